"""A request body must keep coming: a slow client cannot hold a request open forever.

Uvicorn bounds how long a connection may idle between requests, not how long a body may
take: a client sending a byte every few seconds (slowloris) held a request, its task and its
buffers for as long as it liked (issue #33). A body must have arrived within ``seconds`` of
the request's start plus the time its bytes so far take at ``min_rate`` bytes a second: a
512 MB upload at 64 KB/s still has its two hours, a trickle is cut after ``seconds``. Past
it the request is answered 408 and the handler, waiting for the body, is told the client left.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors
from .middleware import HttpMiddleware
from .rendering import error_response


class BodyDeadline(HttpMiddleware):
    def __init__(self, app: ASGIApp, seconds: float, min_rate: int) -> None:
        super().__init__(app)
        self.seconds = seconds
        self.min_rate = min_rate

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        received = 0
        reading, late = True, False

        async def timed() -> Message:
            nonlocal received, reading, late
            if not reading:
                return await receive()
            left = started + self.seconds + received / self.min_rate - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0))
            except asyncio.TimeoutError:
                reading, late = False, True
                return {"type": "http.disconnect"}
            received += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                reading = False
            return message

        async def answering(message: Message) -> None:
            if not late:  # what the app answers to a body that never came, the 408 replaces
                await send(message)

        await self.app(scope, timed, answering)
        if late:
            await error_response(errors.request_timeout(self.seconds, self.min_rate))(scope, receive, send)
