"""An aiohttp application on a loopback port, served from a thread with an event loop of its
own: what the tests' and benches' small upstreams share (``fake_upstreams.ChatOnlyUpstream``,
``recorded_upstream.RecordedUpstream``, the reasoning upstream, bench/codex_record.py's
recording proxy). A subclass adds its routes in ``routes``; ``started`` and ``stopping`` run
on the server's loop (a client session opened and closed there)."""

from __future__ import annotations

import asyncio
import threading


class LoopbackApp:
    client_max_size = 1 << 20  # aiohttp's default: a body past it is a 413

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/v1"

    def routes(self, app) -> None:
        """Add the routes (``app``: an ``aiohttp.web.Application``)."""
        raise NotImplementedError

    async def started(self) -> None:
        """Run on the server's loop before the first request."""

    async def stopping(self) -> None:
        """Run on the server's loop once it stops serving."""

    def _serve(self) -> None:
        from aiohttp import web

        async def start() -> web.AppRunner:
            await self.started()
            app = web.Application(client_max_size=self.client_max_size)
            self.routes(app)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            return runner

        self._loop = asyncio.new_event_loop()
        runner = self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.run_until_complete(self.stopping())
        self._loop.close()

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
