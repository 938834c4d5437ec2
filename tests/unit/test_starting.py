"""The start-up shell (http/starting.py): liveness at once, the app once built and started."""

from __future__ import annotations

import asyncio
import json
import threading

from llm_backend.http.starting import Starting


class App:
    """A small real ASGI app with a lifespan, standing for the built service."""

    def __init__(self, fail_startup: bool = False) -> None:
        self.fail_startup = fail_startup
        self.started = self.stopped = False

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if self.fail_startup:  # as Starlette does: say so, and raise
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        raise RuntimeError("no database")
                    self.started = True
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.stopped = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app " + scope["path"].encode()})


async def get(app, path: str) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


class Lifespan:
    """Drives the shell's lifespan as uvicorn does."""

    def __init__(self, app) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.create_task(app({"type": "lifespan", "state": {}}, self.inbox.get, self.outbox.put))

    async def send(self, kind: str) -> str:
        await self.inbox.put({"type": f"lifespan.{kind}"})
        return (await self.outbox.get())["type"]


def test_health_answers_while_the_app_is_built_and_requests_wait_for_it():
    async def scenario():
        release, inner = threading.Event(), App()
        stops = []
        shell = Starting(lambda: release.wait(10) and inner, lambda: stops.append(True))
        lifespan = Lifespan(shell)
        assert await lifespan.send("startup") == "lifespan.startup.complete"  # listening at once
        assert await get(shell, "/health") == (200, json.dumps({"status": "ok"}).encode())
        status, body = await get(shell, "/ready")
        assert status == 503 and json.loads(body)["status"] == "not_ready"
        waiting = asyncio.create_task(get(shell, "/v1/models"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        release.set()
        assert await asyncio.wait_for(waiting, 10) == (200, b"from the app /v1/models")
        assert inner.started and await get(shell, "/ready") == (200, b"from the app /ready")
        assert await lifespan.send("shutdown") == "lifespan.shutdown.complete"
        assert inner.stopped and not stops

    asyncio.run(scenario())


def test_an_app_that_fails_to_start_stops_the_server_and_answers_503_meanwhile():
    async def scenario():
        stops = []
        shell = Starting(lambda: App(fail_startup=True), lambda: stops.append(True))
        lifespan = Lifespan(shell)
        assert await lifespan.send("startup") == "lifespan.startup.complete"
        status, body = await asyncio.wait_for(get(shell, "/v1/models"), 10)
        assert status == 503 and json.loads(body)["error"]["type"] == "server_error"
        assert stops == [True] and shell.failed is not None
        assert await lifespan.send("shutdown") == "lifespan.shutdown.complete"

    asyncio.run(scenario())
