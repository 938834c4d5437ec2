"""A loopback hop between a gateway and a real upstream (this service on the real model)
that shows what a hosted API's edge sees and says: it records each request's headers (every
value of each name, so a header sent twice shows twice) and JSON body, passes the request on
(the body's bytes, its content type, the client's key), and answers with the upstream's
status, body and headers plus the headers OpenAI's and Anthropic's APIs send with every
answer and that no local server sends: who the account is, its shared rate limits, the CDN's.

Not a model: the answers are the real upstream's. What it adds are headers only, those in
``HOSTED``. A ``cache_salt`` is taken out of a chat body before it is passed on, as vLLM
takes it (the real upstream, which refuses fields OpenAI does not define, never sees it).
"""

from __future__ import annotations

import json

from tests.support.loopback import LoopbackApp

# What a hosted API's answer carries about the account and its hosting (values as they look).
HOSTED = {
    "openai-organization": "org-operator-account",
    "openai-project": "proj_operator",
    "openai-processing-ms": "211",
    "openai-version": "2020-10-01",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9412",
    "x-ratelimit-remaining-tokens": "1734000",
    "anthropic-organization-id": "6b9e3c4e-operator-org",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-tokens-remaining": "398000",
    "cf-ray": "8f1d2c3b4a5e6f70-AMS",
    "x-envoy-upstream-service-time": "198",
    "x-should-retry": "false",
}
# The upstream's own headers not passed back (about the connection, or set again here).
HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"})


class HeaderHop(LoopbackApp):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")
        self.seen: list[tuple[str, dict[str, list[str]], dict | None]] = []  # path, headers, JSON body

    def headers_of(self, path: str) -> list[dict[str, list[str]]]:
        return [headers for seen_path, headers, _ in self.seen if seen_path == path]

    def bodies_of(self, path: str) -> list[dict]:
        return [body for seen_path, _, body in self.seen if seen_path == path and body is not None]

    async def started(self) -> None:
        from aiohttp import ClientSession

        self._session = ClientSession(auto_decompress=False)

    async def stopping(self) -> None:
        await self._session.close()

    def routes(self, app) -> None:
        from aiohttp import web

        async def passed_on(request):
            body = await request.read()
            headers: dict[str, list[str]] = {}
            for name, value in request.headers.items():
                headers.setdefault(name.lower(), []).append(value)
            parsed = _json(body) if request.content_type == "application/json" else None
            self.seen.append((request.path, headers, parsed))
            if isinstance(parsed, dict) and "cache_salt" in parsed:
                body = json.dumps({name: value for name, value in parsed.items() if name != "cache_salt"}).encode()
            sent = {name: values[-1] for name, values in headers.items() if name not in ("host", "content-length")}
            async with self._session.request(
                request.method, self.target + request.path_qs, data=body or None, headers=sent, allow_redirects=False
            ) as upstream:
                answer = {name: value for name, value in upstream.headers.items() if name.lower() not in HOP}
                response = web.StreamResponse(status=upstream.status, headers={**answer, **HOSTED})
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response

        app.router.add_route("*", "/{tail:.*}", passed_on)


def _json(body: bytes) -> dict | None:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
