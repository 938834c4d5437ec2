"""The least an HTTP proxy process can do: a reference for what the gateway adds.

Relays POST /v1/chat/completions and GET /v1/models to an upstream with the same parts the
gateway uses (uvicorn, aiohttp's pooled client) and nothing else: no routing by the spec,
no validation, no keys, no logs, no retries. ``bench/proxy.py`` measures it beside the
gateway, so the gateway's added latency can be read against the floor of any proxy hop on
the machine at hand. Not a product: it answers nothing but those two operations.

    python bench/floor_proxy.py PORT UPSTREAM_BASE_URL UPSTREAM_KEY
"""

from __future__ import annotations

import sys

import aiohttp
import uvicorn

PORT, UPSTREAM, KEY = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
PATHS = {"/v1/chat/completions": "/chat/completions", "/v1/models": "/models"}
session: aiohttp.ClientSession | None = None


async def app(scope, receive, send) -> None:
    global session
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            session = aiohttp.ClientSession(auto_decompress=False)
            await send({"type": "lifespan.startup.complete"})
        await session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    url = UPSTREAM + PATHS.get(scope["path"], scope["path"])
    async with session.request(scope["method"], url, data=body or None, headers=headers) as response:
        content = await response.read()
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_config=None, access_log=False)
