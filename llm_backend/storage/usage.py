"""Usage accounting: the tokens of every answer, per minute, key, project, model and operation
family, kept for OpenAI's usage operations (controllers/usage.py) and ``llm-backend usage``.

Never on the hot path: ``record`` adds to an in-process dict keyed by (minute, operation,
key, project, model) - a dict update, about 1 µs - and a background task writes what gathered
every ``FLUSH_INTERVAL`` seconds (and at shutdown) as one multi-row INSERT in a worker
thread. A busy process writes one row per key and model per minute, whatever its request
rate. Several flushes of one minute, or several replicas, write several rows for it:
readers sum, so nothing is ever updated in place and replicas never contend on a row.
A process killed with SIGKILL loses at most its last few seconds of accounting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from .models import UsageRecord

if TYPE_CHECKING:
    from .handle import DatabaseHandle

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 5.0
COMPLETIONS, EMBEDDINGS, MODERATIONS = "completions", "embeddings", "moderations"
AUDIO_SPEECHES, AUDIO_TRANSCRIPTIONS = "audio_speeches", "audio_transcriptions"
FILE_SEARCH_CALLS, VECTOR_STORES = "file_search_calls", "vector_stores"
IMAGES = "images"  # forwarded image operations: the images counted in ``calls`` (no column of their own)
# What a record sums, in the order of the table's columns after its key.
SUMS = ("requests", "input_tokens", "cached_tokens", "output_tokens", "seconds", "characters", "calls", "bytes")
# What a group_by field of OpenAI's usage operations is here (the rest are always null).
GROUP_COLUMNS = {"api_key_id": UsageRecord.owner, "project_id": UsageRecord.project_id, "model": UsageRecord.model}
Key = tuple[int, str, str, str | None, str]  # minute, operation, key, project, model


@dataclass(frozen=True)
class Measured:
    """What one answer used, of one usage family: tokens, or what is not tokens."""

    family: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    characters: int = 0
    calls: int = 0
    bytes: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class UsageTotals:
    """Summed usage of one bucket (``start``) and group (the ``group_by`` fields' values)."""

    start: int
    group: dict[str, str]
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    seconds: float = 0.0
    characters: int = 0
    calls: int = 0
    bytes: int = 0
    minutes: int = 0  # distinct minutes recorded in (vector stores: the hours sampled)


class UsageStore:
    def __init__(self, database: DatabaseHandle, flush_interval: float = FLUSH_INTERVAL) -> None:
        self._database = database
        self.flush_interval = flush_interval
        self._pending: dict[Key, list[float]] = {}
        self._task: asyncio.Task | None = None

    # --- request path: memory only ------------------------------------------------------------

    def record(
        self, operation: str, owner: str, model: str, input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0,
        requests: int = 1, project: str | None = None, *, seconds: float = 0.0, characters: int = 0, calls: int = 0,
        bytes: int = 0,
    ) -> None:
        """Count one answer's usage, of the key ``owner`` of ``project`` (written by the next flush)."""
        key = (int(time.time()) // 60 * 60, operation, owner, project, model)
        amounts = (requests, input_tokens, cached_tokens, output_tokens, seconds, characters, calls, bytes)
        sums = self._pending.get(key)
        if sums is None:
            self._pending[key] = list(amounts)
        else:
            for index, amount in enumerate(amounts):
                sums[index] += amount

    # --- writing: a background task --------------------------------------------------------

    def _insert(self, rows: list[dict]) -> None:
        with self._database.sessions.begin() as session:
            session.execute(insert(UsageRecord), rows)

    async def flush(self) -> int:
        """Write what has gathered, in one INSERT; the number of rows written."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [
            {"minute": minute, "operation": operation, "owner": owner, "project_id": project, "model": model, **dict(zip(SUMS, sums))}
            for (minute, operation, owner, project, model), sums in pending.items()
        ]
        try:
            await self._database.run(self._insert, rows)
        except Exception:
            log.warning("usage not written yet; retried at the next flush", exc_info=True)
            for key, sums in pending.items():  # back into the buffer, added to what came since
                current = self._pending.setdefault(key, [0] * len(SUMS))
                for index, value in enumerate(sums):
                    current[index] += value
            return 0
        return len(rows)

    async def totals_now(self, *args, **kwargs) -> list:
        """``totals`` with what this replica has counted and not yet written written first: an
        answer's usage shows in the next read here, not up to ``flush_interval`` later."""
        await self.flush()
        return await self._database.run(self.totals, *args, **kwargs)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def stop(self) -> None:
        """Stop the background task and write what is left."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    # --- reading (blocking: call through Database.run, or from the CLI) -------------------------

    def vector_store_bytes(self) -> dict[str, int]:
        """Each project's bytes kept in vector stores now (their files' indexed bytes)."""
        from .models import VectorStore, VectorStoreFile

        query = (
            select(VectorStore.owner, func.sum(VectorStoreFile.usage_bytes))
            .join(VectorStoreFile, VectorStoreFile.vector_store_seq == VectorStore.seq)
            .group_by(VectorStore.owner)
        )
        with self._database.sessions() as session:
            return {owner: int(total) for owner, total in session.execute(query) if total}

    def totals(
        self,
        start: int,
        end: int,
        *,
        operation: str | None = None,
        width: int | None = None,
        group_by: tuple[str, ...] = (),
        owners: list[str] | None = None,
        models: list[str] | None = None,
        projects: list[str] | None = None,
    ) -> list[UsageTotals]:
        """Usage of the minutes from the one holding ``start`` to ``end`` (exclusive), summed per bucket of ``width`` seconds (Unix
        time multiples; None: one bucket, reported at ``start``) and per ``group_by`` field
        (``api_key_id``, ``project_id``, ``model``, ``operation``)."""
        columns = {**GROUP_COLUMNS, "operation": UsageRecord.operation}
        grouped = [columns[name].label(name) for name in group_by]
        bucket = (UsageRecord.minute // width * width) if width else None
        keys = ([bucket.label("bucket")] if bucket is not None else []) + grouped
        query = select(*keys, *(func.sum(getattr(UsageRecord, name)) for name in SUMS), func.count(UsageRecord.minute.distinct())).where(UsageRecord.minute >= start // 60 * 60, UsageRecord.minute < end)  # the minute holding start counts
        if operation is not None:
            query = query.where(UsageRecord.operation == operation)
        if owners:
            query = query.where(UsageRecord.owner.in_(owners))
        if models:
            query = query.where(UsageRecord.model.in_(models))
        if projects:
            query = query.where(UsageRecord.project_id.in_(projects))
        if keys:
            query = query.group_by(*keys).order_by(*keys)
        with self._database.sessions() as session:
            # The columns of a SELECT built above: its bucket, groups, sums and minutes.
            rows: Sequence[Any] = session.execute(query).all()
        results = []
        offset = 1 if bucket is not None else 0
        for row in rows:
            *row, minutes = row
            if row[-1] is None:  # no rows at all: SUM over nothing
                continue
            group = {name: row[offset + index] for index, name in enumerate(group_by)}
            sums: dict[str, Any] = {name: (float(value) if name == "seconds" else int(value)) for name, value in zip(SUMS, row[-len(SUMS):])}
            results.append(UsageTotals(int(row[0]) if bucket is not None else start, group, **sums, minutes=int(minutes)))
        return results
