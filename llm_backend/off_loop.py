"""Work sized by a request's input, run off the event loop (issue #39).

The event loop answers every request of the process, ``/health`` too: a request's work that
grows with its input (parsing and checking a large body, turning a million token ids into
text) ran on it for seconds, and every tenant waited. Such work runs in one of
``THREADS`` threads kept for it, never the default executor the database calls use (a few
large requests must not hold those up), with the request's context variables. Small inputs
stay on the loop: a thread costs about 50 us, more than their work.

A thread helps only where the work lets the GIL go now and then: Python code does (every
5 ms), a long C call does not; see ``json/text.py`` for the JSON parser's case. The cycle
collector is such a call: with a large input's million objects alive, each full collection
walked them all, holding the GIL (checking the 578 000 objects of one 8 MiB body: 8.4 s,
2.9 s without the collector). So the collector is paused while large work runs, and what
the work built is then frozen out of its sight (``gc.freeze``) until the requests holding
such objects have all ended (``release``): freed by reference counting meanwhile, walked by
no collection.

A full collection walks every object the process holds, the start-up's too (the document,
its compiled schemas, the libraries: 500 000 objects, 0.1-0.3 s of the GIL here, taken at
whatever moment the collector chose: ``/health`` waited that long). So the start-up's
objects are frozen once the app is ready (``settle``), and what a large work's freeze took
in stays frozen after its request ends: what was garbage among it is given back to the
collector only every ``FREEZES_KEPT`` large works (``release``), one full collection then.
What such a freeze keeps meanwhile is only what was alive when it ran and later became
garbage held in a cycle (a request's own objects): freed by reference counting otherwise.

While large work runs, the interpreter's switch interval is ``SWITCH_INTERVAL`` (1 ms, not
5): the loop's thread lets the GIL go at each system call (a socket read, a log line) and
waited up to the interval to take it back from the working thread each time, some ten
times a ``/health`` answer (its waits beside a 493 000-key body's validation, on the
machine loaded 10-13 by other work: median 0.12-0.25 s at 1 ms, 0.33-0.35 s at 5 ms).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

THREADS = 2
# A list of more values than this in a request (token ids, inputs) is large.
LARGE_LIST = 32_768
T = TypeVar("T")
_threads: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_running = 0  # large works under way (the collector paused)
_collector_was_on = True
_holding = 0  # requests whose large input may be frozen
_paused_for_start = False  # ``starting`` turned the collector off; ``settle`` turns it back on
SWITCH_INTERVAL = 0.001
_interval = sys.getswitchinterval()
FREEZES_KEPT = 1000
_freezes = 0  # large works frozen since the collector last saw everything
_holds: contextvars.ContextVar[bool] = contextvars.ContextVar("holds_large_input", default=False)


async def off_loop(large: bool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``: in a thread of its own pool if ``large``, else here."""
    global _threads, _holding
    if not large:
        return work(*args)
    if _threads is None:
        _threads = ThreadPoolExecutor(THREADS, thread_name_prefix="large-input")
    if not _holds.get():
        _holds.set(True)
        with _lock:
            _holding += 1
    call = functools.partial(contextvars.copy_context().run, _uncollected, work, *args)
    return await asyncio.get_running_loop().run_in_executor(_threads, call)


def _uncollected(work: Callable[..., T], *args: Any) -> T:
    global _running, _collector_was_on, _freezes
    with _lock:
        _running += 1
        if _running == 1:
            _collector_was_on = gc.isenabled()
            gc.disable()
            sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return work(*args)
    finally:
        with _lock:
            _running -= 1
            _freezes += 1
            gc.freeze()
            if _running == 0:
                sys.setswitchinterval(_interval)
                if _collector_was_on:
                    gc.enable()


def large_input() -> bool:
    """Whether this request's input was large (it ran large work here already): what is
    sized by it later, re-encoding it for an upstream, goes off the loop too."""
    return _holds.get()


def starting() -> None:
    """The collector paused while the service starts (``llm-backend serve``): the start-up
    builds long-lived objects and little garbage, and the collector's passes over them as
    they grew cost a start 0.25 of its 1.4 CPU-seconds and 0.25 s to ready (peak RSS the
    same, 137-138 MiB; 2 cores, 2026-11-28). ``settle`` collects once and turns it back on."""
    global _paused_for_start
    _paused_for_start = gc.isenabled()
    gc.disable()


def settle() -> None:
    """The start-up's objects out of the collector's sight (see the module's docstring):
    called once, when the app is ready to serve; the collector on again if ``starting``
    paused it (an app built without ``serve`` leaves it as its process has it)."""
    global _paused_for_start
    gc.collect()
    gc.freeze()
    if _paused_for_start:
        _paused_for_start = False
        gc.enable()


def release() -> None:
    """The end of a request (``http/middleware.RequestContext``): once no request holds a
    large input any more, and ``FREEZES_KEPT`` large works have frozen what was alive, the
    frozen objects are the collector's again."""
    global _holding, _freezes
    if not _holds.get():
        return
    _holds.set(False)
    with _lock:
        _holding -= 1
        if _holding == 0 and _freezes >= FREEZES_KEPT:
            _freezes = 0
            gc.unfreeze()


def many_values(value: Any) -> bool:
    """Whether ``value`` is a list of more than ``LARGE_LIST`` values, those of the lists in
    it counted (a prompt of token arrays, messages with content parts)."""
    if not isinstance(value, list):
        return False
    count = len(value)
    for item in value:
        if count > LARGE_LIST:
            break
        if isinstance(item, (list, dict)):
            count += len(item.get("content") or ()) if isinstance(item, dict) and isinstance(item.get("content"), list) else len(item)
    return count > LARGE_LIST
