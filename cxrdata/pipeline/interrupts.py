"""Stopping a build: Ctrl-C and SIGTERM become one ``KeyboardInterrupt`` in the main process.

The CLI installs :func:`install`; the engine then kills its workers, finished tasks keep their markers,
and the CLI prints one line. Workers must never print a traceback of their own. While they are
spawned (:func:`spawning`): a stop signal is only recorded (interrupting ``Process.start`` half-way
leaves a child reading a cut pipe) and raised right after; and the spawning thread blocks both
signals, so every child starts with them blocked (the signal mask survives ``exec``) until its
initializer ignores Ctrl-C (a terminal's Ctrl-C reaches the whole process group: the main process
alone acts on it) and unblocks them (:func:`worker_signals`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"installed": False, "deferring": False, "pending": 0, "stopped_by": int(signal.SIGINT)}


def _handler(signum: int, frame: FrameType | None) -> None:
    _state["stopped_by"] = signum
    if _state["deferring"]:
        _state["pending"] = signum
        return
    raise KeyboardInterrupt


def install() -> None:
    """Route Ctrl-C and SIGTERM to one ``KeyboardInterrupt`` (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    _state["installed"] = True


def stopped_by() -> int:
    """The signal that stopped the build (SIGINT unless SIGTERM came)."""
    return _state["stopped_by"]


@contextmanager
def spawning() -> Iterator[None]:
    """Around the start of worker processes (see the module docstring)."""
    _state["deferring"] = True
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held meanwhile is handled (recorded) now
        _state["deferring"] = False
        if _state["pending"]:
            _state["pending"] = 0
            raise KeyboardInterrupt


def worker_signals() -> None:
    """In a worker: Ctrl-C belongs to the main process (it stops the workers); SIGTERM ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
