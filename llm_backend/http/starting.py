"""The ASGI app while the real one is being built: the API listens within half a second.

Importing the web stack and building the app (Connexion, the OpenAI document, the
database, the backends) takes a second or more; an orchestrator or a developer waiting
for the port should not. uvicorn starts with this shell, which binds at once and answers
``/health`` (liveness: the process is up) while the app is built in a thread and its
lifespan (migrations, models loading in the background) runs. ``/ready`` says
``not_ready`` meanwhile; every other request waits for the app, then goes to it. If the
app cannot be built or started, the failure is logged and the server stops (``failed``).

Deliberately light: nothing here imports the web framework, so the shell itself costs
nothing to import.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

HEALTHY = {"status": "ok"}
STARTING = {
    "status": "not_ready",
    "checks": {
        "models": {"ok": False, "detail": "starting"},
        "database": {"ok": False, "detail": "starting"},
    },
}


async def _answer(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Starting:
    """Serves ``build()``'s app once it is built and started; ``/health`` right away.

    ``stop`` is called if the app fails to build or start, so the server exits instead of
    answering for an app it does not have.
    """

    def __init__(self, build: Callable[[], Any], stop: Callable[[], None]) -> None:
        self._build = build
        self._stop = stop
        self.app: Any = None  # set once built and started
        self.failed: BaseException | None = None
        self._started = asyncio.Event()
        self._starting: asyncio.Task | None = None
        self._lifespan: Any = None

    async def __call__(self, scope, receive, send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan_events(receive, send)
        elif scope["type"] == "http" and scope["path"] == "/health":
            await _answer(send, 200, HEALTHY)
        elif scope["type"] == "http" and scope["path"] == "/ready":
            await _answer(send, 503, STARTING)
        else:
            await self._started.wait()
            if self.app is None:
                await _answer(send, 503, {"error": {"message": "The service failed to start.", "type": "server_error",
                                                    "param": None, "code": None}})
                return
            await self.app(scope, receive, send)

    async def _lifespan_events(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._starting = asyncio.create_task(self._start())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._starting is not None:
                    await asyncio.shield(self._starting)
                if self._lifespan is not None:
                    await self._lifespan.__aexit__(None, None, None)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        from asgi_lifespan import LifespanManager

        try:
            # A thread: the imports and the build are a second of CPU the event loop
            # must not wait behind (it answers /health meanwhile).
            app = await asyncio.to_thread(self._build)
            lifespan = LifespanManager(app, startup_timeout=None, shutdown_timeout=None)
            await lifespan.__aenter__()
            self._lifespan, self.app = lifespan, app
        except BaseException as exc:  # noqa: BLE001 - any failure stops the server
            self.failed = exc
            log.critical("the service failed to start", exc_info=exc)
            self._stop()
        finally:
            self._started.set()
