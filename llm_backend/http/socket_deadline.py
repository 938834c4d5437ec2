"""A WebSocket message must keep coming, as a request body must (``body_deadline.py``).

uvicorn hands an app a WebSocket message only when its last fragment has arrived, and bounds
its size (``ws_max_size``), not its time: a client sending a fragment, or a frame's bytes,
every few seconds held the partial message (up to 8 MiB) and its connection for as long as
it liked (issue #39). So uvicorn's WebSocket protocol is given the body's rule: a message
must have arrived within ``seconds`` of its first byte plus the time its bytes so far take
at ``min_rate`` bytes a second. Past it the connection is closed with 1008 (policy
violation) and a reason naming the rule; the app sees the client leave.

The clock stops while uvicorn does not read (it pauses reading while the app has not taken
the message before), so a busy app never costs its client the deadline. The protocol it
extends finishes a handshake that a denial response answered (``socket_denial.py``).
"""

from __future__ import annotations

import asyncio

from .socket_denial import DenialAnswered

CLOSE_POLICY_VIOLATION = 1008


def deadlined_protocol(seconds: float, min_rate: int) -> type[DenialAnswered]:
    """uvicorn's WebSocket protocol (``ws=``) with the message deadline (see the module)."""

    class DeadlinedWebSocketProtocol(DenialAnswered):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.message_bytes = 0  # of the message in progress, counted from its first byte
            self.message_spent = 0.0  # seconds it has taken while reading went on
            self.clock: float | None = None  # when reading last (re)started for it
            self.timer: asyncio.TimerHandle | None = None

        def data_received(self, data: bytes) -> None:
            if not self.in_progress():
                self.message_bytes, self.message_spent = 0, 0.0
            self.message_bytes += len(data)
            super().data_received(data)
            self.rearm()

        def send_receive_event_to_app(self) -> None:
            super().send_receive_event_to_app()
            self.rearm()  # reading may have paused

        async def receive(self):
            message = await super().receive()
            self.rearm()  # reading may have resumed
            return message

        def in_progress(self) -> bool:
            """Whether part of a message has arrived: fragments, or a frame's bytes."""
            return bool(self.frames) or bool(self.conn.reader.buffer)

        def rearm(self) -> None:
            now = self.loop.time()
            if self.clock is not None:
                self.message_spent += now - self.clock
                self.clock = None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.close_sent or self.read_paused or not self.handshake_complete or not self.in_progress():
                return
            self.clock = now
            left = seconds + self.message_bytes / min_rate - self.message_spent
            self.timer = self.loop.call_later(max(left, 0.0), self.message_late)

        def message_late(self) -> None:
            self.timer = None
            if self.close_sent or self.transport.is_closing():
                return
            reason = f"message_timeout: a message must arrive within {seconds:g} s plus 1 s per {min_rate} bytes"
            self.conn.fail(CLOSE_POLICY_VIOLATION, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            super().connection_lost(exc)

    return DeadlinedWebSocketProtocol
