"""The README's REST example runs as written (only the port is swapped for a free one)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- rest-example -->\s*```bash\n(.*?)```", text, re.S)
    assert match, "the README lost its REST example"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readme_rest_example_runs_as_written(redis_url: str) -> None:
    script = _example().replace("8000", str(_free_port()))
    env = {**os.environ, "REDIS_URL": redis_url, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for name in ("API_CLIENT_USERNAME", "API_CLIENT_PASSWORD", "GSY_EXCHANGE_USERS", "GSY_EXCHANGE_USERS_FILE"):
        env.pop(name, None)
    password = "readme-password-typed-at-the-prompt"
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"status":"accepted"' in done.stdout, done.stdout[-2000:]
    assert password not in done.stdout + done.stderr
    # The exchange's closing table: the REST aggregator's assets traded in House 2.
    house = re.search(r"^House 2\s+(\d+)", done.stdout, re.M)
    assert house and int(house.group(1)) > 0, done.stdout[-2000:]
