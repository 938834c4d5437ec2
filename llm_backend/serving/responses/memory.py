"""What a Responses WebSocket connection remembers: its last ``store: false`` response.

OpenAI's WebSocket mode keeps the connection's most recent response in memory, so a client
that stores nothing can still continue it with ``previous_response_id`` on the same socket
(the Open Responses suite's ``websocket-continuation``); over HTTP, or from another socket,
the id stays ``previous_response_not_found``. One response per connection, as OpenAI
keeps: memory bounded by the context window of one conversation, gone with the socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...json.types import Json



@dataclass
class _Remembered:
    response_id: str
    owner: str
    items: list[Json]


class ConnectionMemory:
    def __init__(self) -> None:
        self._last: _Remembered | None = None

    def keep(self, response_id: str, owner: str, items: list[Json]) -> None:
        """``items``: the whole history the response ended, its own input and output last."""
        self._last = _Remembered(response_id, owner, items)

    def forget(self, response_id: str | None) -> None:
        """A continuation of ``response_id`` failed: it is not continued again (OpenAI
        evicts it; the client starts over or resends the history)."""
        if self._last is not None and self._last.response_id == response_id:
            self._last = None

    def history(self, owner: str, response_id: str) -> list[Json] | None:
        """The history ending at ``response_id`` if it is this connection's last response
        and ``owner``'s (a key changed mid-connection is another tenant); else None."""
        last = self._last
        if last is None or last.response_id != response_id or last.owner != owner:
            return None
        return list(last.items)
