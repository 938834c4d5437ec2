"""The batch runner of one process: takes batches by lease, runs their lines, ends them.

Every process runs one. Once a second it renews the leases of the batches it holds (and
learns their statuses: a cancel, an expiry), takes at most one more batch that needs work
and that no live process holds (oldest first, owners it holds none of first, at most
``MAX_HELD_PER_OWNER`` of one owner; one per second, so replicas share), and keeps
``batch_concurrency`` lines running, taken from its tenants in turn and from each tenant's
batches in turn (issue #39: a tenant's many or big batches delay another tenant's line by
about one line of theirs, never by a whole batch).

A batch is checked (``input.py``) and its lines stored, then its lines run; each answer is
committed as it comes (``storage/batches.py``: once per line). A process killed mid-batch
(kill -9) stops renewing its lease; when the lease runs out (``batch_lease``, timed by the
database's clock, so replicas whose clocks disagree still agree on it: ``storage/clock.py``)
any process, the restarted one or another replica on the same database, takes the batch and
runs the lines not answered yet: none is lost, none is answered twice in the output. A clean stop
gives its leases back at once.

Lines run through the endpoint's own validation and controller (``http/batch_lines.py``, behind
the ``Lines`` interface, ``serving/batch_lines.py``) at low priority: a local model answers them
on its low-priority engine, so interactive requests never wait behind a batch. A line refused for
a passing reason (429, 5xx: a model loading, an engine restarting, an upstream's limit) is tried
again, later (not before its ``retry-after``); after ``MAX_ATTEMPTS`` its last answer is kept. A
refusal that will not pass soon (a spend limit's ``insufficient_quota``, a limit that resets past
``MAX_RETRY_AFTER``) is the line's answer at once: retrying it only held the batch. Each line is
admitted as a request of its batch's key; one ``Refused`` ends the batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...backends.registry import ModelRegistry
from ...errors import server_error
from ...json.types import Json
from ...settings import Settings
from ...storage import Database
from ...storage.batches import BatchStore, Claimed
from ...storage.files import FileStore
from . import input as batch_input
from ..batch_lines import Lines, Refused, ends_batch
from .output import answered, not_run, refuse_unanswered, usage_of, write_files
from .retries import retry_delay

log = logging.getLogger(__name__)


class Served(Protocol):
    """What the runner reads of the app's services (``serving/services.Services``, which
    builds the runner: named here, not imported, so neither imports the other)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def database(self) -> Database: ...
    @property
    def registry(self) -> ModelRegistry: ...

TICK = 1.0
# Holding nothing, the runner only looks for batches another replica left (their lease ran
# out) or could not take: no sooner than a lease's quarter, nor less often than this. A claim
# each second was most of an idle server's CPU (4-13 % of a core on this machine, whose
# caches a second of waiting leaves cold); a batch created here wakes the runner at once.
IDLE_TICK = 5.0
MAX_HELD = 8  # batches one process runs at once; more wait, oldest first
MAX_HELD_PER_OWNER = 2  # of one tenant: the others' batches are taken while its wait
JOB_RETRY_DELAY = 10.0  # seconds before a failed check or ending is tried again


@dataclass
class Held:
    """A batch this process holds the lease of."""

    batch: Claimed
    status: str
    expires_at: int
    queue: collections.deque = field(default_factory=collections.deque)  # (line, custom_id, body, attempt)
    cursor: int = -1  # the last line loaded into ``queue``
    exhausted: bool = False  # no line beyond ``cursor`` is waiting
    retries: list = field(default_factory=list)  # (due, line, custom_id, body, attempt)
    lines: dict[int, asyncio.Task] = field(default_factory=dict)  # running lines
    job: asyncio.Task | None = None  # checking the input, or ending the batch
    not_before: float = 0.0  # after a job failed: when to try again (monotonic)
    refused: tuple[int, Json] | None = None  # (status, body): no further line runs (Refused)


class BatchRunner:
    def __init__(self, services: Served, lines: Lines) -> None:
        self.services = services
        self.lines = lines
        settings = services.settings
        self.lease = settings.batch_lease
        self.idle_tick = max(TICK, min(IDLE_TICK, self.lease / 4))
        self.concurrency = settings.batch_concurrency
        self.files = FileStore(services.database, settings.data_dir / "files")
        self.store: BatchStore = services.database.batches
        self.holder = f"{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.held: dict[int, Held] = {}
        # Round robin over the tenants holding batches here, and over each one's batches.
        self._owners: collections.deque[str] = collections.deque()
        self._batches: dict[str, collections.deque[int]] = {}
        self._wake = asyncio.Event()  # look at leases, statuses and new batches now
        self._line_ended = asyncio.Event()  # start more lines now

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run for the process's life (a lifespan task); ``stop`` ends it cleanly. Leases,
        statuses and claims once per ``TICK`` while it holds a batch, once per ``idle_tick``
        while it holds none (or when woken: a batch created or cancelled); lines are started
        as soon as others end."""
        next_tick = 0.0
        while True:
            try:
                if self._wake.is_set() or time.monotonic() >= next_tick:
                    self._wake.clear()
                    await self._tick()
                    next_tick = time.monotonic() + (TICK if self.held else self.idle_tick)
                self._line_ended.clear()
                await self._fill()
            except Exception:
                log.exception("the batch runner failed a round")
                next_tick = time.monotonic() + TICK
            waits = [asyncio.ensure_future(event.wait()) for event in (self._wake, self._line_ended)]
            await asyncio.wait(waits, timeout=max(0.0, next_tick - time.monotonic()), return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    def wake(self) -> None:
        """Look for work now (a batch was created or cancelled), not at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop every line and job, and give the leases back (another process takes over)."""
        running = [task for held in self.held.values() for task in (*held.lines.values(), held.job) if task]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._db(self.store.release, self.holder, list(self.held))
        self.held.clear()
        self._owners.clear()
        self._batches.clear()

    async def _db(self, function, *args: Any, **kwargs: Any) -> Any:
        return await self.services.database.run(function, *args, **kwargs)

    async def _tick(self) -> None:
        states = await self._db(self.store.renew, self.holder, list(self.held), self.lease)
        for seq in [seq for seq in self.held if seq not in states]:
            await self._drop(seq, "the batch's lease was lost or it ended elsewhere")
        for seq, (status, expires_at, expired) in states.items():
            held = self.held.get(seq)
            if held is None:  # let go meanwhile (its job ended it)
                continue
            held.status, held.expires_at = status, expires_at
            if held.job is not None or time.monotonic() < held.not_before:
                continue
            if status == "validating":
                held.job = self._job(held, self._validate(held))
            elif status == "cancelling":
                held.job = self._job(held, self._end(held, "cancelled"))
            elif expired:  # by the database's clock, as every replica judges it
                held.job = self._job(held, self._end(held, "expired"))
            elif held.refused is not None and status == "in_progress":
                held.job = self._job(held, self._end_refused(held, held.refused))
            elif status == "finalizing" or (held.exhausted and not held.queue and not held.retries and not held.lines):
                held.job = self._job(held, self._end(held, "completed"))
        if len(self.held) < MAX_HELD:
            full = [owner for owner, seqs in self._batches.items() if len(seqs) >= MAX_HELD_PER_OWNER]
            claimed = await self._db(self.store.claim, self.holder, self.lease, list(self._batches), full)
            if claimed is not None:
                self.held[claimed.seq] = Held(claimed, claimed.status, claimed.expires_at)
                self._take_turns(claimed)
                self._wake.set()  # start it now, not at the next tick

    def _job(self, held: Held, work) -> asyncio.Task:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch job failed", extra={"batch_id": held.batch.id})
                held.not_before = time.monotonic() + JOB_RETRY_DELAY
            finally:
                held.job = None
                self._wake.set()

        return asyncio.create_task(run(), name=f"batch {held.batch.id}")

    async def _drop(self, seq: int, why: str) -> None:
        held = self.held.pop(seq, None)
        if held is None:
            return
        self._leave_turns(held.batch)
        tasks = [task for task in (*held.lines.values(), held.job) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("batch let go", extra={"batch_id": held.batch.id, "reason": why})

    # --- lines ---------------------------------------------------------------------------------

    def _running(self) -> int:
        return sum(len(held.lines) for held in self.held.values())

    async def _fill(self) -> None:
        """Start lines until ``batch_concurrency`` run, one batch after another in turn."""
        now = time.monotonic()
        for held in self.held.values():
            due = [retry for retry in held.retries if retry[0] <= now]
            if due:
                held.retries = [retry for retry in held.retries if retry[0] > now]
                held.queue.extendleft(reversed([retry[1:] for retry in due]))
        idle = 0
        # Enough tries to see every batch once, whichever tenants' turns they fall in.
        while self._running() < self.concurrency and self._owners and idle < len(self.held) * len(self._owners):
            seq = self._next_turn()
            held = self.held[seq]
            if held.status != "in_progress" or held.job is not None:
                idle += 1
                continue
            if not held.queue and not held.exhausted:
                await self._load(held)
            if not held.queue or seq not in self.held or held.refused is not None:  # refused while loading
                idle += 1
                continue
            idle = 0
            line, custom_id, body, attempt = held.queue.popleft()
            held.lines[line] = asyncio.create_task(self._line(held, line, custom_id, body, attempt))

    async def _load(self, held: Held) -> None:
        rows = await self._db(self.store.pending, held.batch.seq, held.cursor, max(self.concurrency * 4, 32))
        running = set(held.lines) | {retry[1] for retry in held.retries}
        held.queue.extend((line, custom_id, body, 1) for line, custom_id, body in rows if line not in running)
        if rows:
            held.cursor = rows[-1][0]
        else:
            held.exhausted = True

    async def _line(self, held: Held, line: int, custom_id: str, body: Json, attempt: int) -> None:
        batch = held.batch
        try:
            try:
                status, answer, request_id, retry_after = await self.lines.answer(batch, body)
            except asyncio.CancelledError:
                raise
            except Refused as refused:
                self._refuse(held, refused.status, refused.body)
                return
            except Exception:
                log.exception("a batch line failed", extra={"batch_id": batch.id})
                status, answer, request_id, retry_after = 500, server_error().body(), "req_" + secrets.token_hex(16), None
            delay = retry_delay(status, answer, retry_after, attempt)
            if delay is not None:
                held.retries.append((time.monotonic() + delay, line, custom_id, body, attempt + 1))
                return
            output = answered(custom_id, status, answer, request_id)
            usage = usage_of(answer) if status == 200 else {}
            await self._db(self.store.answer, batch.seq, line, output, status != 200, usage)
            if ends_batch(status, answer):
                self._refuse(held, status, answer)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not kept (the database failed): the line stays unanswered, and runs again
            # when the batch is found to have lines left at its end.
            log.exception("a batch line's answer could not be kept", extra={"batch_id": batch.id})
        finally:
            held.lines.pop(line, None)
            if not held.lines and held.exhausted and not held.queue:
                self._wake.set()  # its last line: end the batch now
            self._line_ended.set()

    def _refuse(self, held: Held, status: int, body: Json) -> None:
        """No further line of ``held`` starts; its next tick ends it (``_end_refused``)."""
        if held.refused is None:
            held.refused = (status, body)
            log.info("batch refused", extra={"batch_id": held.batch.id, "status": status})
        held.queue.clear()
        held.retries.clear()
        held.exhausted = True
        self._wake.set()

    # --- checking and ending a batch -------------------------------------------------------------

    async def _validate(self, held: Held) -> None:
        batch = held.batch
        found = await self._db(self.files.locate, batch.owner, batch.input_file_id)
        if found is None:
            problems = [batch_input.file_missing(batch.input_file_id)]
        elif found[0]["purpose"] != "batch":
            problems = [batch_input.not_a_batch_file(batch.input_file_id, found[0]["purpose"])]
        elif found[0]["bytes"] > batch_input.MAX_FILE_BYTES:
            problems = [batch_input.too_large(found[0]["bytes"])]
        else:
            settings = self.services.settings
            try:
                checked = await self._db(batch_input.check, found[1], batch.endpoint, self.lines.required(batch.endpoint),
                                         self._batchable, settings.max_body_bytes, settings.max_body_values)
            except FileNotFoundError:
                # Its row is there, its bytes not (docs/SCALING.md: one volume for every replica).
                log.warning("batch input file's bytes not found", extra={"batch_id": batch.id, "file_id": batch.input_file_id})
                problems = [batch_input.file_missing(batch.input_file_id)]
            else:
                problems = checked.errors
                if not problems:
                    if await self._db(self.store.accept, batch.seq, checked.model, batch_input.requests(found[1])):
                        held.status = "in_progress"
                        log.info("batch accepted", extra={"batch_id": batch.id, "requests": checked.requests})
                    return
        await self._db(self.store.set_status, batch.seq, "failed", ("validating",), errors=problems)
        await self._let_go(held)

    def _batchable(self, model: str) -> bool:
        """Whether lines may name ``model``: one served here or upstream - unless upstreams
        are sent the client's own key (``upstream_pass_client_key``), which a batch does not
        keep: its lines could only be refused there."""
        registry = self.services.registry
        backend = registry.backend_for_or_none(model)
        if backend is None:
            return False
        return backend in registry.local or not self.services.settings.upstream_pass_client_key

    async def _end_refused(self, held: Held, refused: tuple[int, Json]) -> None:
        """The lines running finish (they were admitted); the others get the refusal."""
        await asyncio.gather(*list(held.lines.values()), return_exceptions=True)
        await self._db(refuse_unanswered, self.store, held.batch.seq, *refused)
        await self._end(held, "completed")

    async def _end(self, held: Held, ending: str) -> None:
        """Write the output and error files and give the batch its final status:
        ``completed``, or ``cancelled``/``expired`` with what was done (the lines that
        never ran in the error file)."""
        batch = held.batch
        lines = list(held.lines.values())
        for task in lines:
            task.cancel()
        await asyncio.gather(*lines, return_exceptions=True)
        held.queue.clear()
        held.retries.clear()
        if ending == "completed":
            if held.status != "finalizing" and not await self._db(
                self.store.set_status, batch.seq, "finalizing", ("in_progress",)
            ):
                return  # cancelled meanwhile: the next tick ends it so
            if await self._db(self.store.pending, batch.seq, -1, 1):
                # A line not answered (another process's, whose answer was lost): run it.
                await self._db(self.store.set_status, batch.seq, "in_progress", ("finalizing",))
                held.status, held.cursor, held.exhausted = "in_progress", -1, False
                return
        else:
            for line, custom_id in await self._db(self.store.unanswered, batch.seq):
                await self._db(self.store.answer, batch.seq, line, not_run(custom_id, ending), True, {})
        written = await self._db(write_files, self.store, self.files, batch)
        expected = {"completed": ("finalizing",), "cancelled": ("cancelling",), "expired": ("in_progress", "finalizing")}
        ended = await self._db(self.store.set_status, batch.seq, ending, expected[ending], **written)
        if ended:
            log.info("batch ended", extra={"batch_id": batch.id, "status": ending})
        await self._let_go(held)

    async def _let_go(self, held: Held) -> None:
        await self._db(self.store.release, self.holder, [held.batch.seq])
        if self.held.pop(held.batch.seq, None) is not None:
            self._leave_turns(held.batch)

    # --- turns -------------------------------------------------------------------------------

    def _take_turns(self, batch: Claimed) -> None:
        if batch.owner not in self._batches:
            self._batches[batch.owner] = collections.deque()
            self._owners.append(batch.owner)
        self._batches[batch.owner].append(batch.seq)

    def _leave_turns(self, batch: Claimed) -> None:
        seqs = self._batches.get(batch.owner)
        if seqs is None or batch.seq not in seqs:
            return
        seqs.remove(batch.seq)
        if not seqs:
            del self._batches[batch.owner]
            self._owners.remove(batch.owner)

    def _next_turn(self) -> int:
        """The next tenant's next batch."""
        owner = self._owners[0]
        self._owners.rotate(-1)
        seqs = self._batches[owner]
        seqs.rotate(-1)
        return seqs[-1]
