"""Stopping child processes: SIGTERM first, SIGKILL for whoever ignores it."""

import signal
import subprocess
import sys

from orchestrator.processes import stop_processes

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)


def test_polite_processes_get_sigterm_and_stubborn_ones_sigkill():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"  # its SIGTERM handler is in place
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stop_processes([polite, stubborn, done], timeout=1.0)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert done.returncode == 0
    stubborn.stdout.close()
