"""``PerProcess`` / ``PerProcessMap``: one value per process, however many threads ask; a forked
child builds its own, even when the parent forked in the middle of a build."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gsy_e_sdk.wire.per_process import PerProcess, PerProcessMap


class Built:
    """A value that remembers the process that built it."""

    def __init__(self, key: object = None) -> None:
        self.pid = os.getpid()
        self.key = key


def _in_child(check) -> int:
    """Run ``check()`` in a forked child; its exit status (0: it returned True within 10 s)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if check() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung (a lock inherited from the parent?)")


def test_threads_get_one_value_built_once():
    builds = []

    def build() -> Built:
        builds.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive while it builds
        return Built()

    holder = PerProcess(build)
    with ThreadPoolExecutor(16) as pool:
        values = list(pool.map(lambda _: holder.get(), range(64)))
    assert len(builds) == 1 and all(value is values[0] for value in values)
    assert holder.get() is values[0] and len(builds) == 1


def test_a_forked_child_builds_a_fresh_value():
    holder = PerProcess(Built)
    parent = holder.get()
    assert _in_child(lambda: holder.get() is not parent and holder.get().pid == os.getpid() != parent.pid) == 0
    assert holder.get() is parent  # the parent keeps its own


def test_a_fork_during_a_build_does_not_leave_the_child_locked():
    started, release = threading.Event(), threading.Event()
    parent_pid = os.getpid()

    def slow_build() -> Built:
        if os.getpid() == parent_pid:
            started.set()
            release.wait(5)
        return Built()

    holder = PerProcess(slow_build)
    builder = threading.Thread(target=holder.get)
    builder.start()
    assert started.wait(5)  # the builder holds the lock now
    try:
        # The child has no builder thread; without a fresh lock its get() would wait forever.
        assert _in_child(lambda: holder.get().pid == os.getpid()) == 0
    finally:
        release.set()
        builder.join(5)
    assert holder.get().pid == os.getpid()


def test_a_map_builds_one_value_per_key_and_forgets_on_fork():
    holder: PerProcessMap[str, Built] = PerProcessMap(Built)
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(holder.get, ["a", "b"] * 32))
    assert {id(value) for value in values} == {id(holder.get("a")), id(holder.get("b"))}
    assert holder.get("a").key == "a"
    parent = holder.get("a")
    assert _in_child(lambda: holder.get("a") is not parent and holder.get("a").pid == os.getpid()) == 0
    assert holder.pop("a") is parent and holder.get("a") is not parent  # popped: built again
    assert holder.pop("missing") is None
