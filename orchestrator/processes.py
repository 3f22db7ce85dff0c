"""Child processes the fleet commands start on this machine: Celery workers and the exchange."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from celery import Celery

from orchestrator.sharding import queue_name, shards_for_worker

logger = logging.getLogger(__name__)


# Seconds between a worker's heartbeat events: the shard failover (orchestrator.failover) counts a
# worker lost after the fleet's failover_after seconds of silence, a few heartbeats.
HEARTBEAT_S = 1


def worker_command(
    queues: list[str], name: str, log_level: str = os.environ.get("GSY_FLEET_WORKER_LOG_LEVEL", "WARNING")
) -> list[str]:
    """The documented worker command line (``celery -A workers worker -Q ... -E --heartbeat-interval 1``)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers",
        "worker",
        "-Q",
        ",".join(queues),
        "--pool",
        "threads",
        "--concurrency",
        os.environ.get("GSY_FLEET_WORKER_CONCURRENCY", "8"),
        "-n",
        f"{name}@%h",
        "--loglevel",
        log_level,
        "--without-gossip",
        "--without-mingle",
        "-E",
        "--heartbeat-interval",
        str(HEARTBEAT_S),
    ]


def dispatcher_command(config: Path, *args: str, log_level: str = "INFO") -> list[str]:
    """``gsy-e-sdk fleet dispatch --config CONFIG ARGS`` as a child process's argv (no secret in it:
    a Redis URL with a password goes in the environment, ``REDIS_URL``)."""
    return [
        sys.executable,
        "-m",
        "gsy_e_sdk",
        "--log-level",
        log_level,
        "fleet",
        "dispatch",
        "--config",
        str(config),
        *args,
    ]


class LocalWorkers:
    """N worker processes on this machine; worker i consumes shards i, i+N, i+2N, ...

    Supervised: worker i alone consumes its shards, so a worker that dies (OOM killer, a crash,
    a stray SIGKILL) would leave them unconsumed for the rest of the run. A watcher thread starts
    a dead worker again under the same name and queues; the tasks it held come back from the
    broker after the visibility timeout (``orchestrator.celery_app``).
    """

    SUPERVISE_EVERY_S = 0.5

    def __init__(
        self,
        app: Celery,
        count: int,
        shards: int,
        env: dict[str, str],
        log_dir: Path | None = None,
        name_prefix: str = "worker",
    ) -> None:
        self.app = app
        self.count = count
        self.shards = shards
        self.env = env
        self.log_dir = log_dir
        self.name_prefix = name_prefix
        self.processes: list[subprocess.Popen] = []
        self.restarts = 0
        self._logs: list = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def _spawn(self, index: int, mode: str = "w") -> subprocess.Popen:
        queues = [queue_name(shard) for shard in shards_for_worker(index, self.count, self.shards)]
        log = open(self.log_dir / f"{self.name_prefix}-{index}.log", mode) if self.log_dir else subprocess.DEVNULL
        if log is not subprocess.DEVNULL:
            self._logs.append(log)
        process = subprocess.Popen(
            worker_command(queues, f"{self.name_prefix}{index}"),
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        logger.info("worker %d consumes %s (pid %d)", index, ",".join(queues), process.pid)
        return process

    def start(self, ready_timeout: float = 60.0, supervise: bool = True) -> LocalWorkers:
        for index in range(self.count):
            self.processes.append(self._spawn(index))
        self.wait_ready(ready_timeout)
        if supervise:
            self._watcher = threading.Thread(target=self._supervise, name="fleet-worker-supervisor", daemon=True)
            self._watcher.start()
        return self

    def _supervise(self) -> None:
        while not self._stopping.wait(self.SUPERVISE_EVERY_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                for index, process in enumerate(self.processes):
                    if process.poll() is not None:
                        logger.warning(
                            "worker %d (pid %d) exited with code %s; starting it again",
                            index,
                            process.pid,
                            process.returncode,
                        )
                        self.processes[index] = self._spawn(index, mode="a")
                        self.restarts += 1

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        names = {f"{self.name_prefix}{index}" for index in range(self.count)}
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited with code {process.returncode} while starting")
            replies = self.app.control.ping(timeout=0.5) or []
            answered = {name.split("@")[0] for reply in replies for name in reply}
            if names <= answered:
                return
        raise RuntimeError(f"workers not ready after {timeout:g} s")

    def stop(self) -> None:
        with self._lock:  # no restart once stopping
            self._stopping.set()
        stop_processes(self.processes)
        for log in self._logs:
            log.close()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM (``kill``, ``docker stop``, systemd) ends the command as Ctrl-C does.

    Python's default for SIGTERM is to die on the spot, skipping every ``finally``: the Celery
    workers and the exchange a command started would run on as orphans. Raising
    KeyboardInterrupt instead runs the same clean-up as Ctrl-C (children stopped, results
    written). Only the main thread may install handlers; elsewhere this does nothing.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_processes(processes: Iterable[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM every live process at once, then SIGKILL whichever has not exited ``timeout`` s later."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_exchange(client, process: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Block until a local exchange listens on ``aggregator-commands`` (it is then ready for clients)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the exchange exited with code {process.returncode} while starting")
        if any(count for _, count in client.pubsub_numsub("aggregator-commands")):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the exchange did not start listening within {timeout:g} s")


def exchange_command(scenario: Path, *args: str) -> list[str]:
    """The local exchange's command line; its Redis URL goes in the environment (``exchange_env``)."""
    return [
        sys.executable,
        "-m",
        "gsy_e_sdk",
        "--log-level",
        "WARNING",
        "exchange",
        "run",
        "--scenario",
        str(scenario),
        *args,
    ]


def exchange_env(redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A child's environment carrying the Redis URL: argv is readable by every user (``ps``), and a
    URL may hold a password."""
    return {**os.environ, **(extra or {}), "REDIS_URL": redis_url}
