"""OpenAI request bodies to engine parameters, and engine output back to OpenAI objects.

The spec has already validated types and ranges; what is checked here is what the local
engine cannot honour. Such a parameter gets a 400 naming it: silently ignoring something
that changes the answer would be worse.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ...errors import bad_request
from ..base import Json
from . import tools

# OpenAI's sampling defaults (llama-cpp-python's own differ: temperature 0.2, top_k 40, ...).
OPENAI_SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


# JSON Schema counts 3.0 as an integer, so the spec lets integral floats through where it
# says integer; the engine needs ints.
INTEGER_PARAMETERS = ("seed", "n", "max_tokens", "max_completion_tokens", "top_logprobs", "logprobs", "best_of")


def _is_token(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tokens(values: list) -> list[int]:
    return [int(value) for value in values]


def with_integers(request: Json) -> Json:
    """``request`` with integral floats of integer parameters as ints."""
    fixed = {
        name: int(request[name])
        for name in INTEGER_PARAMETERS
        if isinstance(request.get(name), float) and request[name].is_integer()
    }
    return {**request, **fixed} if fixed else request


def unsupported(param: str, why: str) -> Exception:
    return bad_request(f"'{param}' is not supported by local models: {why}.", param, "unsupported_parameter")


def _text_of(content: Any, param: str) -> str | None:
    """Message content as the chat template wants it: a string (text parts joined)."""
    if content is None or isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(content):
        if part.get("type") not in ("text", "refusal"):
            raise unsupported(f"{param}[{index}].type", f"'{part.get('type')}' content needs a multimodal model")
        texts.append(part.get("text") or part.get("refusal") or "")
    return "".join(texts)


def chat_messages(messages: list[Json]) -> list[Json]:
    converted = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "function" or message.get("function_call"):
            raise unsupported(f"messages[{index}]", "the deprecated function messages; use tools")
        text = {
            # "developer" is OpenAI's newer name for the system role.
            "role": "system" if role == "developer" else role,
            "content": _text_of(message.get("content"), f"messages[{index}].content") or "",
        }
        for key in ("tool_calls", "tool_call_id"):
            if message.get(key):
                text[key] = message[key]
        converted.append(text)
    return tools.render_tool_history(converted)


def _with_system_text(messages: list[Json], text: str) -> list[Json]:
    # One system message first: some chat templates accept no other place for it.
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + text}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _tools(request: Json) -> tuple[list[Json], Any]:
    """The function tools the model may call, and the tool_choice, checked."""
    declared = request.get("tools") or []
    for index, tool in enumerate(declared):
        if tool.get("type") != "function":
            raise unsupported(f"tools[{index}].type", "only function tools")
    choice = request.get("tool_choice")
    if choice is None:
        choice = "auto" if declared else "none"
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise unsupported("tool_choice", "only 'none', 'auto', 'required' or a named function")
        name = choice["function"]["name"]
        chosen = [tool for tool in declared if tool["function"]["name"] == name]
        if not chosen:
            raise bad_request(f"'tool_choice' names '{name}', which is not in 'tools'.", "tool_choice", "invalid_value")
        return chosen, choice
    if choice != "none" and not declared:
        raise bad_request(f"'tool_choice' is '{choice}' but no 'tools' were given.", "tool_choice", "invalid_value")
    return (declared if choice != "none" else []), choice


def _structure(request: Json, offered: list[Json], choice: Any) -> Json | None:
    """What the output must parse as (enforced by a grammar in the engine)."""
    forced = bool(offered) and (choice == "required" or isinstance(choice, dict))
    response_format = request.get("response_format") or {"type": "text"}
    kind = response_format.get("type")
    if forced and kind != "text":
        raise bad_request(
            "'response_format' cannot be combined with a required tool call.", "response_format", "invalid_value"
        )
    if forced:
        parallel = request.get("parallel_tool_calls", True) is not False and not isinstance(choice, dict)
        return {"kind": "tool_calls", "tools": offered, "parallel": parallel}
    if kind == "json_object":
        return {"kind": "json_object"}
    if kind == "json_schema":
        return {"kind": "json_schema", "schema": response_format["json_schema"].get("schema") or {}}
    if kind != "text":
        raise unsupported("response_format", f"'{kind}' output")
    return None


def _max_tokens(request: Json) -> int | None:
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    return value


def _sampling(request: Json) -> Json:
    params = dict(OPENAI_SAMPLING)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed"):
        if request.get(name) is not None:
            params[name] = request[name]
    stop = request.get("stop")
    params["stop"] = [stop] if isinstance(stop, str) else (stop or [])
    if request.get("logit_bias"):
        try:
            params["logit_bias"] = {int(token): float(bias) for token, bias in request["logit_bias"].items()}
        except ValueError:
            raise bad_request("'logit_bias' keys must be token ids.", "logit_bias", "invalid_value") from None
    params["n"] = request.get("n") or 1
    params["stream"] = bool(request.get("stream"))
    params["include_usage"] = bool((request.get("stream_options") or {}).get("include_usage"))
    return params


def _refuse(request: Json, checks: dict[str, tuple[Any, str]]) -> None:
    for param, (accepted, why) in checks.items():
        value = request.get(param)
        if value is not None and not accepted(value):
            raise unsupported(param, why)


def chat_params(request: Json) -> Json:
    request = with_integers(request)
    _refuse(
        request,
        {
            "functions": (lambda functions: not functions, "the deprecated 'functions'; use 'tools'"),
            "function_call": (lambda choice: choice == "none", "the deprecated 'function_call'; use 'tool_choice'"),
            "audio": (lambda _: False, "no audio output"),
            "modalities": (lambda modalities: set(modalities) <= {"text"}, "text output only"),
            "prediction": (lambda _: False, "no predicted outputs"),
            "web_search_options": (lambda _: False, "no web search"),
            "moderation": (lambda _: False, "no moderation model runs beside them"),
            "reasoning_effort": (lambda effort: effort == "none", "they are not reasoning models"),
            "verbosity": (lambda verbosity: verbosity == "medium", "no verbosity control"),
        },
    )
    if request.get("top_logprobs") and not request.get("logprobs"):
        raise bad_request("'logprobs' must be true when 'top_logprobs' is used.", "top_logprobs", "invalid_value")
    offered, choice = _tools(request)
    messages = chat_messages(request["messages"])
    if offered:
        messages = _with_system_text(messages, tools.tool_instructions(offered, choice))
    return {
        "messages": messages,
        "max_tokens": _max_tokens(request),
        "logprobs": bool(request.get("logprobs")),
        "top_logprobs": request.get("top_logprobs") or 0,
        "structure": _structure(request, offered, choice),
        "tool_names": sorted(tool["function"]["name"] for tool in offered),
        **_sampling(request),
    }


def completion_prompts(prompt: Any) -> list[str | list[int]]:
    """The prompts of a request: a string, a token array, or a list of either."""
    if prompt is None:
        # The spec's default prompt: "<|endoftext|>", i.e. generate from nothing.
        return [""]
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(_is_token(token) for token in prompt):
        return [_tokens(prompt)]
    if not prompt:
        raise bad_request("'prompt' must not be an empty list.", "prompt", "invalid_value")
    return [item if isinstance(item, str) else _tokens(item) for item in prompt]


def completion_params(request: Json) -> Json:
    request = with_integers(request)
    _refuse(
        request,
        {
            "best_of": (lambda n: n == (request.get("n") or 1), "best_of would rank choices; only best_of = n"),
            "suffix": (lambda _: False, "the models have no fill-in-the-middle mode"),
        },
    )
    logprobs = request.get("logprobs")
    return {
        "prompts": completion_prompts(request.get("prompt")),
        # null means the default, as OpenAI reads it.
        "max_tokens": 16 if request.get("max_tokens") is None else request["max_tokens"],
        "logprobs": logprobs is not None,
        "top_logprobs": logprobs or 0,
        "echo": bool(request.get("echo")),
        **_sampling(request),
    }


class _Choices:
    """What the engine said for each choice, gathered for a non-streamed answer."""

    def __init__(self, n: int) -> None:
        self.text = [""] * n
        self.logprobs: list[list[Json]] = [[] for _ in range(n)]
        self.finish_reason: list[str | None] = [None] * n
        self.usage: Json = {}

    @classmethod
    def of(cls, events: list[Json], n: int) -> "_Choices":
        gathered = cls(n)
        for event in events:
            gathered.add(event)
        return gathered

    def add(self, event: Json) -> None:
        if event["event"] == "echo":
            # Every choice starts with the prompt (completions' echo).
            self.text = [event["text"] + text for text in self.text]
            self.logprobs = [(event["logprobs"] or []) + entries for entries in self.logprobs]
        elif event["event"] == "delta":
            index = event["index"]
            self.text[index] += event["text"]
            self.logprobs[index] += event.get("logprobs", [])
            self.finish_reason[index] = event.get("finish_reason") or self.finish_reason[index]
        elif event["event"] == "usage":
            self.usage = usage(event)


def usage(event: Json) -> Json:
    prompt, completion = event["prompt_tokens"], event["completion_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        # As OpenAI reports its prompt caching: prompt tokens whose KV was already computed.
        "prompt_tokens_details": {"cached_tokens": event.get("cached_tokens", 0)},
    }


class ChatShaper:
    """Engine events -> OpenAI chat objects under the model id the client asked for."""

    object_name = "chat.completion"
    chunk_object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def __init__(self, model_id: str, fingerprint: str, params: Json) -> None:
        self.id = self.id_prefix + uuid.uuid4().hex
        self.model_id = model_id
        self.fingerprint = fingerprint
        self.created = int(time.time())
        self.n = params["n"]
        self.logprobs = params["logprobs"]
        self.include_usage = params["include_usage"]
        self.tool_names = set(params.get("tool_names") or [])

    def _envelope(self, data: Json, object_name: str) -> Json:
        return {
            "id": self.id,
            "object": object_name,
            "created": self.created,
            "model": self.model_id,
            "system_fingerprint": self.fingerprint,
            **data,
        }

    def _logprobs(self, entries: list[Json]) -> Json | None:
        return {"content": entries, "refusal": None} if self.logprobs else None

    def completion(self, events: list[Json]) -> Json:
        gathered = _Choices.of(events, self.n)
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": gathered.text[index], "refusal": None},
                "logprobs": self._logprobs(gathered.logprobs[index]),
                "finish_reason": gathered.finish_reason[index],
            }
            for index in range(self.n)
        ]
        if self.tool_names:
            for choice in choices:
                calls = tools.parse_tool_calls(choice["message"]["content"], self.tool_names)
                if calls:
                    choice["message"].update(content=None, tool_calls=calls)
                    choice["finish_reason"] = "tool_calls"
        return self._envelope({"choices": choices, "usage": gathered.usage}, self.object_name)

    def _chunk(self, index: int, delta: Json, entries: list[Json] | None, finish_reason: str | None) -> Json:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        if entries is not None:
            choice["logprobs"] = self._logprobs(entries)
        return self._envelope({"choices": [choice]}, self.chunk_object_name)

    async def chunks(self, events: AsyncIterator[Json]) -> AsyncIterator[Json]:
        # With tools offered, each choice's text becomes content or tool-call deltas.
        calls = [tools.ToolCallStream(self.tool_names) for _ in range(self.n)] if self.tool_names else None
        async for event in events:
            kind = event["event"]
            if kind == "prompt":
                for index in range(self.n):
                    yield self._chunk(index, {"role": "assistant", "content": ""}, None, None)
            elif kind == "delta":
                index, reason = event["index"], event.get("finish_reason")
                if calls is None:
                    entries = event.get("logprobs") if self.logprobs else None
                    if event["text"] or entries:
                        yield self._chunk(index, {"content": event["text"]}, entries, None)
                else:
                    for delta in calls[index].feed(event["text"]) + (calls[index].finish() if reason else []):
                        yield self._chunk(index, delta, None, None)
                    if reason == "stop" and calls[index].called:
                        reason = "tool_calls"
                if reason:
                    yield self._chunk(index, {}, None, reason)
            elif kind == "usage" and self.include_usage:
                yield self._envelope({"choices": [], "usage": usage(event)}, self.chunk_object_name)


class CompletionShaper(ChatShaper):
    object_name = chunk_object_name = "text_completion"
    id_prefix = "cmpl-"

    def _logprobs(self, entries: list[Json], offset: int = 0) -> Json | None:
        if not self.logprobs:
            return None
        offsets = []
        for entry in entries:
            offsets.append(offset)
            offset += len(bytes(entry["bytes"]).decode("utf-8", errors="ignore"))
        return {
            "tokens": [entry["token"] for entry in entries],
            "token_logprobs": [entry["logprob"] for entry in entries],
            "top_logprobs": [
                None if entry["top_logprobs"] is None else {top["token"]: top["logprob"] for top in entry["top_logprobs"]}
                for entry in entries
            ],
            "text_offset": offsets,
        }

    def completion(self, events: list[Json]) -> Json:
        gathered = _Choices.of(events, self.n)
        choices = [
            {
                "index": index,
                "text": gathered.text[index],
                "logprobs": self._logprobs(gathered.logprobs[index]),
                "finish_reason": gathered.finish_reason[index],
            }
            for index in range(self.n)
        ]
        return self._envelope({"choices": choices, "usage": gathered.usage}, self.object_name)

    async def chunks(self, events: AsyncIterator[Json]) -> AsyncIterator[Json]:
        offsets = [0] * self.n
        async for event in events:
            kind = event["event"]
            if kind == "echo":
                for index in range(self.n):
                    choice = {
                        "index": index,
                        "text": event["text"],
                        "logprobs": self._logprobs(event["logprobs"] or [], 0),
                        "finish_reason": None,
                    }
                    offsets[index] += len(event["text"])
                    yield self._envelope({"choices": [choice]}, self.object_name)
            elif kind == "delta":
                index = event["index"]
                choice = {
                    "index": index,
                    "text": event["text"],
                    "logprobs": self._logprobs(event.get("logprobs", []), offsets[index]),
                    "finish_reason": event.get("finish_reason"),
                }
                offsets[index] += len(event["text"])
                yield self._envelope({"choices": [choice]}, self.object_name)
            elif kind == "usage" and self.include_usage:
                yield self._envelope({"choices": [], "usage": usage(event)}, self.object_name)


def embedding_inputs(request: Json) -> list[str | list[int]]:
    if request.get("dimensions") is not None:
        raise unsupported("dimensions", "the embedding size is fixed by the model")
    value = request["input"]
    if isinstance(value, str):
        items: list = [value]
    elif value and all(_is_token(token) for token in value):
        items = [_tokens(value)]
    else:
        items = [item if isinstance(item, str) else _tokens(item) for item in value]
    if not items:
        raise bad_request("'input' must not be empty.", "input", "invalid_value")
    return items


def embedding_response(model_id: str, result: Json, encoding_format: str) -> Json:
    def encode(vector: list[float]) -> list[float] | str:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    n_tokens = result["n_tokens"]
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)}
            for index, vector in enumerate(result["vectors"])
        ],
        "model": model_id,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }
