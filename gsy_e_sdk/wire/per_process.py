"""Values that belong to one process: built on first use, shared by its threads, never inherited.

Why: a shared connection pool, event loop thread or token cache copied into a forked child
(Celery's prefork pool, ``multiprocessing``) is broken there: the threads that served it did not
survive the fork, its sockets are the parent's, and a lock held at the fork stays locked forever.
Every such singleton is a ``PerProcess`` (one value) or ``PerProcessMap`` (one value per key):
the first ``get`` builds it under a lock (one build however many threads ask at once), and one
``os.register_at_fork`` hook makes a forked child forget every value and lock, so the child
builds its own on first use.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar, cast

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class _Forgetful(Protocol):
    def forget(self) -> None: ...


_holders: weakref.WeakSet[_Forgetful] = weakref.WeakSet()
_hook_lock = threading.Lock()
_hook_registered = False


def _forget_all_after_fork() -> None:
    global _hook_lock
    _hook_lock = threading.Lock()  # another thread may have held it at the fork
    for holder in list(_holders):
        holder.forget()


def _track(holder: _Forgetful) -> None:
    """Remember ``holder`` for the fork hook, registered once per process on first use."""
    global _hook_registered
    with _hook_lock:
        if not _hook_registered:
            os.register_at_fork(after_in_child=_forget_all_after_fork)
            _hook_registered = True
        _holders.add(holder)


class PerProcess(Generic[T]):
    """One ``factory()`` value per process."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._built = False
        self._lock = threading.Lock()
        _track(self)

    def get(self) -> T:
        """The process's value, built on the first call."""
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._factory()
                    self._built = True
        return cast(T, self._value)  # built: a T (which may itself allow None)

    def forget(self) -> None:
        """Drop the value (without closing it) and the lock; the next ``get`` builds anew."""
        self._lock = threading.Lock()
        self._value, self._built = None, False


class PerProcessMap(Generic[K, V]):
    """One ``factory(key)`` value per key and process (e.g. a connection per URL)."""

    def __init__(self, factory: Callable[[K], V]) -> None:
        self._factory = factory
        self._values: dict[K, V] = {}
        self._lock = threading.Lock()
        _track(self)

    def get(self, key: K) -> V:
        """The value for ``key``, built on the first call for it."""
        with self._lock:
            value = self._values.get(key)
            if value is None:
                value = self._values[key] = self._factory(key)
            return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Forget the value for ``key`` (e.g. after closing it); returns it, else ``default``."""
        with self._lock:
            return self._values.pop(key, default)

    def forget(self) -> None:
        """Drop every value (without closing them) and the lock."""
        self._lock = threading.Lock()
        self._values = {}
