"""A pool worker's side of monitor/pool.py: read a task, run it, answer; within its memory limit.

Kept apart from the pool so each file reads as one side of the socket pair.
The frame format (`FRAME`) is the one both sides speak.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import resource
import signal
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

__all__ = ["FRAME", "serve"]

FRAME: Final = struct.Struct("!I")  # the length of the pickle that follows


def serve(
    channel: socket.socket, initializer: Callable[[], None] | None, memory_mb: int = 0
) -> None:
    """A worker's life: read a task, run it, send back (True, result) or (False, exception).

    It ends when the service closes its end of the socket. Ctrl-C in a terminal
    reaches the whole process group; the service, not the worker, decides when
    the worker stops. A failing initializer leaves the failure to the tasks.
    A task that runs out of memory (`memory_mb`) is answered with the
    MemoryError, and the worker ends: its heap is not worth keeping.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_mb > 0:
        _limit_memory(memory_mb)
    if initializer is not None:
        with contextlib.suppress(Exception):
            initializer()
    # What the worker inherited and loaded so far lives as long as it does: out of the
    # collector's sight, its pages are not written by collections (they stay shared
    # with the forkserver and the other workers), and collections are cheaper.
    gc.freeze()
    with channel, channel.makefile("rb") as incoming:
        while header := incoming.read(FRAME.size):
            (size,) = FRAME.unpack(header)
            fn, args, kwargs = pickle.loads(incoming.read(size))
            answer = _answer(fn, args, kwargs)
            channel.sendall(FRAME.pack(len(answer)) + answer)
            if answer is _OUT_OF_MEMORY:
                os._exit(0)  # no cleanup: the service replaces this worker


def _limit_memory(memory_mb: int) -> None:
    """Cap this process's address space, so a runaway task fails here, alone."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# The answer to a task that ran out of memory, made before any task runs: when
# memory is short, pickling the answer could fail too.
_OUT_OF_MEMORY: Final = pickle.dumps(
    (False, MemoryError("the worker's memory limit")), protocol=pickle.HIGHEST_PROTOCOL
)


def _answer(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    try:
        outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except MemoryError:
        return _OUT_OF_MEMORY
    except Exception as exc:
        outcome = (False, exc)
    try:
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception still gets an answer
        failure = RuntimeError(f"{fn.__name__}: cannot send back {outcome[1]!r}: {exc!r}")
        return pickle.dumps((False, failure), protocol=pickle.HIGHEST_PROTOCOL)
