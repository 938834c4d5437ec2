"""Model status events (``loading``, ``ready``, ``unloaded``, ``error``) for whoever listens:
the admin server-sent-events stream that dashboards follow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

STATUS_EVENTS = ("loading", "ready", "unloaded", "error")
_BACKLOG = 256  # events a listener may fall behind by before it is dropped


class Subscription:
    """The events published after it was created, in order; close it when done."""

    def __init__(self, listeners: set["Subscription"]) -> None:
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(_BACKLOG)
        self.dropped = False
        self._listeners = listeners
        listeners.add(self)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        if self.dropped and self.queue.empty():
            raise StopAsyncIteration
        return await self.queue.get()

    async def aclose(self) -> None:
        self._listeners.discard(self)


class ModelEvents:
    """Broadcasts model status changes; every event carries the ids of the loaded models."""

    def __init__(self) -> None:
        self._listeners: set[Subscription] = set()
        self.loaded_models: Callable[[], list[str]] = list

    def publish(self, event: str, model_id: str, **details: Any) -> None:
        data = {"model": model_id, "loaded": self.loaded_models(), **details}
        for listener in list(self._listeners):
            try:
                listener.queue.put_nowait((event, data))
            except asyncio.QueueFull:
                # A listener that stopped reading must not hold events in memory forever;
                # its stream ends and a dashboard reconnects.
                self._listeners.discard(listener)
                listener.dropped = True

    def subscribe(self) -> Subscription:
        """Start listening now (before, say, a snapshot is taken, so nothing falls between)."""
        return Subscription(self._listeners)
