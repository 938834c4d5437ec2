"""An OpenAI-compatible upstream that answers chat completions with recorded answers: for the
coding agents' tool loops through the gateway, which need a model's judgement (calling a tool
when asked, then finishing after its output) that no GGUF on these registries has.

Not a model: the test that uses it says so. What is judged is the rest, all real: the client
(Claude Code from npm) and its requests, the gateway's translation of them to chat
completions and back, the client running its tool and sending the output back. The answers
are OpenAI's wire, streamed or not as asked (chunks, ``tool_calls`` deltas, the usage chunk
when ``stream_options.include_usage``):

- a request whose tools include ``tool`` (or one of ``others``, a name to its arguments: each
  client names its shell tool its own way, so one upstream serves them all) and whose last
  message is not a tool's output: a call of the first such tool with its arguments;
- a request whose last message is a tool's output: ``final`` (the output is kept for the test);
- anything else (a client's side requests: titles, summaries): ``side``.

Runs in a thread on loopback; records every request's path and JSON body.
"""

from __future__ import annotations

import json
import time

from tests.support.loopback import LoopbackApp

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class RecordedUpstream(LoopbackApp):
    def __init__(self, tool: str, arguments: dict, final: str, side: str = "ok", others: dict[str, dict] | None = None) -> None:
        super().__init__()
        self.calls = {tool: arguments, **(others or {})}
        self.final, self.side = final, side
        self.requests: list[tuple[str, dict | None]] = []
        self.tool_outputs: list[str] = []

    def chats(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/v1/chat/completions" and body]

    def answer(self, body: dict) -> tuple[dict, str]:
        """(the assistant message, the finish reason) recorded for ``body``."""
        messages = body.get("messages") or [{}]
        names = [tool.get("function", {}).get("name") for tool in body.get("tools") or []]
        if messages[-1].get("role") == "tool":
            content = messages[-1].get("content")
            self.tool_outputs.append(content if isinstance(content, str) else json.dumps(content))
            return {"role": "assistant", "content": self.final}, "stop"
        for tool in (name for name in self.calls if name in names):
            call = {"id": f"call_{len(self.requests)}", "type": "function",
                    "function": {"name": tool, "arguments": json.dumps(self.calls[tool])}}
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return {"role": "assistant", "content": self.side}, "stop"

    def _chunks(self, body: dict, message: dict, finish: str) -> list[dict]:
        base = {"id": "chatcmpl-recorded", "object": "chat.completion.chunk", "created": int(time.time()), "model": body.get("model")}
        delta: dict = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            delta = {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}
        chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]},
                  {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]}]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": USAGE})
        return chunks

    def routes(self, app) -> None:
        from aiohttp import web

        async def chat(request):
            body = await request.json()
            self.requests.append((request.path, body))
            message, finish = self.answer(body)
            if not body.get("stream"):
                return web.json_response({
                    "id": "chatcmpl-recorded", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}], "usage": USAGE,
                })
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            for chunk in self._chunks(body, message, finish):
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response

        async def other(request):
            self.requests.append((request.path, None))
            error = {"error": {"message": "Not found", "type": "invalid_request_error", "param": None, "code": None}}
            return web.json_response(error, status=404)

        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_route("*", "/{tail:.*}", other)
