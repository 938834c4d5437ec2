"""Lines in front of shared engines that serve tenants in turn (issue #39).

A first-come-first-served line lets one tenant's burst delay everyone behind it by the whole
burst, and fill the line so others get 429 at once. Here each tenant's requests wait in
their own order and the tenants take turns: whatever a tenant queued, another tenant's
request waits for at most one request of each tenant ahead of it in the turn. A full line
makes room for a tenant that holds less of it than another: the newest waiting request of
the tenant holding the most is refused (429, as a full line answers) and the newcomer
takes its place. Used by a local model's engines (``llama/local_model.py``, which picks the
worker) and, through ``Admission``, by the audio engines.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from .. import errors

Item = TypeVar("Item")


class Line(Generic[Item]):
    """Waiting items of several tenants, each with the future its waiter awaits."""

    def __init__(self) -> None:
        self._lines: dict[str, collections.deque[tuple[asyncio.Future, Item]]] = {}
        self._turns: collections.deque[str] = collections.deque()  # whose turn is next first

    def waiting(self) -> int:
        return sum(1 for line in self._lines.values() for future, _ in line if not future.done())

    def join(self, tenant: str, future: asyncio.Future, item: Item, limit: int, refusal: Callable[[], Exception]) -> bool:
        """Put ``item`` in ``tenant``'s line; False when the line is full and ``tenant``
        holds at least as much of it as any other (else the fullest tenant's newest
        waiter is refused with ``refusal()`` to make room)."""
        self._prune()
        if self.waiting() >= limit:
            fullest = max(self._turns, key=lambda other: len(self._lines[other]), default=None)
            if fullest is None or len(self._lines[fullest]) <= len(self._lines.get(tenant, ())):
                return False
            evicted, _ = self._lines[fullest].pop()
            evicted.set_exception(refusal())
            self._prune()
        if tenant not in self._lines:
            self._lines[tenant] = collections.deque()
            self._turns.append(tenant)
        self._lines[tenant].append((future, item))
        return True

    def next(self) -> tuple[asyncio.Future, Item] | None:
        """The waiter whose turn it is (None: nobody waits); ``served`` takes it out."""
        self._prune()
        return self._lines[self._turns[0]][0] if self._turns else None

    def served(self) -> None:
        """The item ``next`` gave was served: its tenant goes to the end of the turn."""
        tenant = self._turns[0]
        self._lines[tenant].popleft()
        self._turns.rotate(-1)
        self._prune()

    def _prune(self) -> None:
        # Waiters that gave up (timeout, client gone) or were refused keep nobody in line.
        for tenant in list(self._turns):
            line = self._lines[tenant]
            if any(future.done() for future, _ in line):
                self._lines[tenant] = line = collections.deque(entry for entry in line if not entry[0].done())
            if not line:
                del self._lines[tenant]
                self._turns.remove(tenant)


class Admission:
    """``slots`` requests at once, ``queue_size`` waiting in a fair ``Line``, 429 beyond or
    after ``timeout`` seconds waiting."""

    def __init__(self, model_id: str, slots: int, queue_size: int, timeout: float) -> None:
        self.model_id, self.queue_size, self.timeout = model_id, queue_size, timeout
        self._free = slots
        self._line: Line[None] = Line()
        self.rejected = 0

    @property
    def waiting(self) -> int:
        return self._line.waiting()

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str = "") -> AsyncIterator[None]:
        if self._free and not self._line.waiting():
            self._free -= 1
        else:
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            refusal = functools.partial(errors.queue_full, self.model_id, retry_after=1)
            if not self._line.join(tenant, future, None, self.queue_size, refusal):
                self.rejected += 1
                raise errors.queue_full(self.model_id, retry_after=1)
            try:
                await asyncio.wait_for(asyncio.shield(future), self.timeout)
            except asyncio.TimeoutError:
                if not future.done():
                    future.cancel()
                    self.rejected += 1
                    raise errors.queue_full(self.model_id, retry_after=5) from None
            except errors.OpenAIError:  # made room for another tenant's request
                self.rejected += 1
                raise
            except asyncio.CancelledError:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._release()  # the slot was given as it went: pass it on
                else:
                    future.cancel()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        waiter = self._line.next()
        if waiter is None:
            self._free += 1
            return
        self._line.served()
        waiter[0].set_result(None)  # the slot passes straight to the next in turn
