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

# OpenAI's sampling defaults (llama-cpp-python's own differ: temperature 0.2, top_k 40, ...).
OPENAI_SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


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
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            raise unsupported(f"messages[{index}]", "tool messages need tool support")
        converted.append(
            {
                # "developer" is OpenAI's newer name for the system role.
                "role": "system" if role == "developer" else role,
                "content": _text_of(message.get("content"), f"messages[{index}].content") or "",
            }
        )
    return converted


def _max_tokens(request: Json) -> int | None:
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    return value


def check_token_ids(tokens: list[int], n_vocab: int, param: str) -> None:
    for token in tokens:
        if not 0 <= token < n_vocab:
            raise bad_request(
                f"Invalid token id {token} in '{param}': the model's vocabulary has ids 0 to {n_vocab - 1}.",
                param,
                "invalid_value",
            )


def _sampling(request: Json, n_vocab: int) -> Json:
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
        check_token_ids(list(params["logit_bias"]), n_vocab, "logit_bias")
    return params


def _refuse(request: Json, checks: dict[str, tuple[Any, str]]) -> None:
    for param, (accepted, why) in checks.items():
        value = request.get(param)
        if value is not None and not accepted(value):
            raise unsupported(param, why)


def chat_params(request: Json, n_vocab: int) -> Json:
    _refuse(
        request,
        {
            "n": (lambda n: n == 1, "one choice per request"),
            "tools": (lambda tools: not tools, "no tool calling yet"),
            "functions": (lambda functions: not functions, "no function calling"),
            "tool_choice": (lambda choice: choice == "none", "no tool calling yet"),
            "function_call": (lambda choice: choice == "none", "no function calling"),
            "audio": (lambda _: False, "no audio output"),
            "modalities": (lambda modalities: set(modalities) <= {"text"}, "text output only"),
            "prediction": (lambda _: False, "no predicted outputs"),
            "web_search_options": (lambda _: False, "no web search"),
            "logprobs": (lambda value: value is False, "no log probabilities yet"),
            "top_logprobs": (lambda value: value == 0, "no log probabilities yet"),
            "response_format": (lambda fmt: fmt.get("type") == "text", "no structured outputs yet"),
        },
    )
    return {
        "messages": chat_messages(request["messages"]),
        "max_tokens": _max_tokens(request),
        "stream": bool(request.get("stream")),
        **_sampling(request, n_vocab),
    }


def completion_prompt(prompt: Any, n_vocab: int) -> str | list[int]:
    if prompt is None:
        # The spec's default prompt: "<|endoftext|>", i.e. generate from nothing.
        return ""
    if isinstance(prompt, str):
        return prompt
    if prompt and all(isinstance(token, int) for token in prompt):
        check_token_ids(prompt, n_vocab, "prompt")
        return prompt
    if len(prompt) == 1:
        return completion_prompt(prompt[0], n_vocab)
    raise bad_request("Only one prompt per request is supported by local models.", "prompt", "unsupported_parameter")


def completion_params(request: Json, n_vocab: int) -> Json:
    _refuse(
        request,
        {
            "n": (lambda n: n == 1, "one choice per request"),
            "best_of": (lambda n: n == 1, "one choice per request"),
            "suffix": (lambda _: False, "the models have no fill-in-the-middle mode"),
            "logprobs": (lambda value: value == 0, "no log probabilities yet"),
            "echo": (lambda value: value is False, "no echo yet"),
        },
    )
    return {
        "prompt": completion_prompt(request.get("prompt"), n_vocab),
        "max_tokens": request.get("max_tokens", 16),
        "stream": bool(request.get("stream")),
        **_sampling(request, n_vocab),
    }


class ChatShaper:
    """Engine output -> OpenAI chat objects under the model id the client asked for."""

    object_name = "chat.completion"
    id_prefix = "chatcmpl-"

    def __init__(self, model_id: str, fingerprint: str) -> None:
        self.id = self.id_prefix + uuid.uuid4().hex
        self.model_id = model_id
        self.fingerprint = fingerprint
        self.created = int(time.time())

    def _envelope(self, data: Json, object_name: str) -> Json:
        data.update(
            id=self.id,
            object=object_name,
            created=self.created,
            model=self.model_id,
            system_fingerprint=self.fingerprint,
        )
        for choice in data.get("choices", []):
            choice.setdefault("logprobs", None)
        return data

    def completion(self, result: Json) -> Json:
        for choice in result["choices"]:
            choice["message"].setdefault("refusal", None)
        return self._envelope(result, self.object_name)

    async def chunks(self, stream: AsyncIterator[Json]) -> AsyncIterator[Json]:
        first = True
        async for chunk in stream:
            for choice in chunk.get("choices", []):
                delta = choice.setdefault("delta", {})
                if delta.get("content") is None:
                    delta.pop("content", None)
                if first:
                    delta.setdefault("role", "assistant")
                    delta.setdefault("content", "")
            first = False
            yield self._envelope(chunk, "chat.completion.chunk")


class CompletionShaper(ChatShaper):
    object_name = "text_completion"
    id_prefix = "cmpl-"

    def completion(self, result: Json) -> Json:
        return self._envelope(result, self.object_name)

    async def chunks(self, stream: AsyncIterator[Json]) -> AsyncIterator[Json]:
        async for chunk in stream:
            yield self._envelope(chunk, self.object_name)


def embedding_inputs(request: Json, n_vocab: int) -> list[str | list[int]]:
    if request.get("dimensions") is not None:
        raise unsupported("dimensions", "the embedding size is fixed by the model")
    value = request["input"]
    if isinstance(value, str):
        items: list = [value]
    elif value and all(isinstance(token, int) for token in value):
        items = [value]
    else:
        items = list(value)
    if not items:
        raise bad_request("'input' must not be empty.", "input", "invalid_value")
    for index, item in enumerate(items):
        if isinstance(item, list):
            check_token_ids(item, n_vocab, f"input[{index}]")
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
