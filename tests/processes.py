"""A child process of a test, with its output in a log file (exchange, Flower, fleet processes)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from orchestrator.processes import stop_processes

ROOT = Path(__file__).resolve().parent.parent


class Proc:
    """A child process with its output in a log file; SIGKILL-able by the test.

    ``env`` is added to the test's environment; with ``inherit_env=False`` it is the whole
    environment (e.g. one stripped of credentials).
    """

    def __init__(
        self, argv: list[str], log_path: Path, env: dict[str, str] | None = None, inherit_env: bool = True
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.env = {**(os.environ if inherit_env else {}), **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._log = open(log_path, "a")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def sigkill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        stop_processes([self.process], timeout)
        self._log.close()
