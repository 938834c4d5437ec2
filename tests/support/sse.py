"""Read named server-sent events (``event:`` + ``data:``) from a live httpx stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class EventReader:
    """The events of one open ``text/event-stream`` response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self, timeout: float = 120) -> tuple[str, Any]:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> tuple[str, Any]:
        name, data = "message", []
        async for line in self._lines:
            if not line:
                if data:
                    return name, json.loads("\n".join(data))
                name = "message"  # a ping comment alone: not an event
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        raise EOFError("the event stream ended")

    async def until(self, event: str, model: str, timeout: float = 120) -> list[tuple[str, Any]]:
        """Every event up to and including the first ``event`` about ``model``."""
        seen = []
        while True:
            name, data = await self.next(timeout)
            seen.append((name, data))
            if name == event and data.get("model") == model:
                return seen
