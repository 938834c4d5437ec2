"""The API process's side of the engine workers: start, supervise, talk, restart.

A ``WorkerProcess`` runs one model in a child process and multiplexes requests over its
pipes. If the child dies, the requests it was serving fail with a 503 and a new child is
started; nothing else in the API process notices.

Each worker has a memory ceiling of its own: the ``worker_memory_mb`` allowance
(``memory_limit``) plus what its model takes by its settings, which the worker says in its
hello (``model_bytes``: the KV cache at its types, weights read into its own memory), so a
model's memory is counted, never mistaken for a leak. A watchdog reads the child's anonymous
resident memory (``RssAnon``: its heap, KV cache and buffers, not the model file it maps,
which the kernel can drop and re-read) every ``WATCH_SECONDS`` while it has work and kills a child past it, so a bug or a hostile input costs the requests
that worker was serving a 503 ``worker_out_of_memory`` and a restart, never the pod (issue
#33). An RLIMIT cannot do it: CTranslate2 and glibc's arenas reserve over a gigabyte of
address space they never touch (a transcription worker: 1.3 GB ``VmData``, 0.3 GB resident).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from typing import Any, cast

from ... import errors
from ...errors import OpenAIError
from ...off_loop import large_input, off_loop
from ..base import Stream

log = logging.getLogger(__name__)

_LINE_LIMIT = 256 * 1024 * 1024  # a batch of embeddings is one (long) line
_request_ids = itertools.count(1)

# llama.cpp's OpenMP threads (libgomp) spin up to 300 000 times at each barrier before they
# sleep. When anything else wants the cores (another engine, another pod on the node), a
# spinning thread burns the timeslice its descheduled sibling needs, hundreds of times per
# token. Measured on 2 cores, 3 streams of 48 tokens on each of two engines at once: 22-148 s
# with the default, 1.7-2.0 s with 100 spins; one engine alone, 8 streams: 131 tok/s with
# the default, 140 with 100 spins (median of 6). An explicit GOMP_SPINCOUNT wins.
ENGINE_ENVIRONMENT = {"GOMP_SPINCOUNT": "100"}


ENGINE_MODULE = "llm_backend.backends.llama.worker"
# How often a worker's memory is read while it has work: a worker touching pages at a few
# GB/s overshoots its ceiling by a few hundred MB at most before it is killed. An idle
# worker cannot grow: it is read once every IDLE_WATCH_SECONDS, and again as soon as work
# arrives (20 wake-ups a second per worker of an idle service were 1-2 % of a core each).
WATCH_SECONDS = 0.05
IDLE_WATCH_SECONDS = 1.0


def anonymous_rss(pid: int) -> int | None:
    """The bytes of ``pid``'s resident anonymous memory (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _stdin(process: asyncio.subprocess.Process) -> asyncio.StreamWriter:
    return cast(asyncio.StreamWriter, process.stdin)  # a pipe: ``start`` asks for it


def _stdout(process: asyncio.subprocess.Process) -> asyncio.StreamReader:
    return cast(asyncio.StreamReader, process.stdout)  # a pipe: ``start`` asks for it


class WorkerProcess:
    """``module`` is the worker's program (``python -m module config``): the chat engine's,
    or another that speaks the same JSON-lines protocol (``backends/audio/worker.py``)."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        start_timeout: float,
        module: str = ENGINE_MODULE,
        nice: int = 0,
        memory_limit: int | None = None,
    ) -> None:
        self.name = name
        self.memory_limit = memory_limit  # the allowance beyond what the model takes
        self.memory_ceiling = memory_limit  # the allowance plus what the model takes, once started
        self.killed_for_memory = False
        self.module = module
        self.config = config
        self.start_timeout = start_timeout
        self.nice = nice  # added to the worker's niceness (a low-priority engine: backends/llama/background.py)
        self.process: asyncio.subprocess.Process | None = None
        self.n_ctx: int | None = None
        self.parallel = 1
        self.hello: dict[str, Any] = {}
        self.ready = asyncio.Event()
        self.failure: str | None = None
        self._pending: dict[str, asyncio.Queue] = {}
        self._work = asyncio.Event()  # a request was sent: the watchdog reads at its fast pace
        self._reader: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None
        self._stopping = False
        self._restarts = 0
        self.restarts_total = 0  # for the metrics
        self.stats: dict[str, Any] = {}  # the worker's last ``stats`` event (worker.py), for the metrics

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def start(self) -> None:
        self.ready.clear()
        # coreutils' nice: set in the child before it starts any thread (they inherit it).
        niced = ["nice", "-n", str(self.nice)] if self.nice else []
        self.process = process = await asyncio.create_subprocess_exec(
            *niced,
            sys.executable,
            "-m",
            self.module,
            json.dumps(self.config),
            env={**ENGINE_ENVIRONMENT, **os.environ},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        try:
            line = await asyncio.wait_for(_stdout(process).readline(), self.start_timeout)
            hello = json.loads(line) if line else {}
        except (asyncio.TimeoutError, json.JSONDecodeError):
            hello = {}
        if hello.get("event") != "ready":
            self.failure = f"worker for {self.name} did not start"
            process.kill()
            await process.wait()
            raise RuntimeError(self.failure)
        self.hello = hello  # what the engine says of itself (worker.py)
        self.n_ctx = hello.get("n_ctx")
        self.parallel = hello.get("parallel", 1)
        self.failure = None
        self.killed_for_memory = False
        self._reader = asyncio.create_task(self._read_events(process))
        if self.memory_limit:
            self.memory_ceiling = ceiling = self.memory_limit + int(hello.get("model_bytes") or 0)
            self._watchdog = asyncio.create_task(self._watch_memory(process, ceiling))
        self.ready.set()
        log.info("engine worker ready", extra={"model": self.name, "pid": process.pid})

    async def stop(self) -> None:
        self._stopping = True
        if self.process and self.process.returncode is None:
            _stdin(self.process).close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader:
            self._reader.cancel()
        if self._watchdog:
            self._watchdog.cancel()

    async def _watch_memory(self, process: asyncio.subprocess.Process, ceiling: int) -> None:
        """Kill ``process`` once its anonymous memory passes its ``ceiling``."""
        while process.returncode is None:
            used = anonymous_rss(process.pid)
            if used is not None and used > ceiling:
                self.killed_for_memory = True
                log.error(
                    "engine worker over its memory ceiling: killed",
                    extra={"model": self.name, "pid": process.pid, "bytes": used, "limit": ceiling},
                )
                process.kill()
                return
            if self._pending:
                await asyncio.sleep(WATCH_SECONDS)
            else:
                self._work.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._work.wait(), IDLE_WATCH_SECONDS)

    async def _read_events(self, process: asyncio.subprocess.Process) -> None:
        while line := await _stdout(process).readline():
            for event in json.loads(line):  # the events of one decoding step
                if event.get("event") == "stats":
                    self.stats = event
                    continue
                queue = self._pending.get(event.get("id"))
                if queue is not None:
                    queue.put_nowait(event)
        returncode = await process.wait()
        self.ready.clear()
        # What it was doing went with it: an autoscaler must not read a dead worker's load.
        self.stats = {**self.stats, "decoding": 0, "running": 0, "waiting": 0, "kv_used": 0, "kv_active": 0}
        crashed = {"event": "crashed", "memory": self.killed_for_memory}
        for queue in self._pending.values():
            queue.put_nowait(crashed)
        if self._stopping:
            return
        log.error("engine worker exited", extra={"model": self.name, "returncode": returncode})
        await self._restart()

    async def _restart(self) -> None:
        delay = min(30.0, 0.5 * 2**self._restarts)
        self._restarts += 1
        self.restarts_total += 1
        while not self._stopping:
            try:
                await self.start()
                self._restarts = 0
                return
            except Exception as exc:  # keep trying: the API must outlive a broken engine
                self.failure = str(exc)
                log.error("engine worker restart failed", extra={"model": self.name, "error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def call(self, op: str, params: dict[str, Any]) -> Stream[dict[str, Any]]:
        """Run one operation; yields the worker's events for it in order (``prompt``,
        ``delta``, ``usage``, ``result``), ending after its ``done``.

        Closing the iterator early (client gone) cancels the work in the engine: the worker
        drops the request between two decoding steps and frees its sequence.
        """
        await self.ready.wait()
        rid = f"r{next(_request_ids)}"
        queue: asyncio.Queue = asyncio.Queue()
        self._pending[rid] = queue
        self._work.set()
        finished = False
        try:
            # A request whose input was large (an image's megabytes of base64: 44 ms for 8 MB)
            # is written as JSON off the event loop (off_loop.py).
            self._send(await off_loop(large_input(), _line, {"id": rid, "op": op, "params": params}))
            while True:
                event = await queue.get()
                kind = event["event"]
                if kind == "error":
                    error = event["error"]
                    raise OpenAIError(
                        error.get("status", 500),
                        error["message"],
                        param=error.get("param"),
                        code=error.get("code"),
                    )
                elif kind == "done":
                    finished = True
                    return
                elif kind == "crashed":
                    finished = True
                    raise errors.worker_out_of_memory(self.memory_ceiling) if event.get("memory") else errors.worker_crashed()
                else:
                    yield event
        finally:
            if not finished and self.ready.is_set():
                self._send(_line({"id": rid, "op": "cancel"}))
                # Wait for the engine to drop the request, so its sequence is free again
                # before the next request is admitted.
                try:
                    while (await queue.get())["event"] not in ("done", "crashed"):
                        pass
                finally:
                    self._pending.pop(rid, None)
            else:
                self._pending.pop(rid, None)

    def _send(self, line: bytes) -> None:
        if not self.process or self.process.returncode is not None or not self.ready.is_set():
            raise errors.worker_crashed()
        _stdin(self.process).write(line)


def _line(message: dict[str, Any]) -> bytes:
    """A message to the worker: one line of JSON."""
    return (json.dumps(message) + "\n").encode()
