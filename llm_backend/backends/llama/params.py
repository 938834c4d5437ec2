"""OpenAI request bodies to engine parameters (the other way back: shapers.py).

The spec has already validated types and ranges; what is checked here is what the spec
cannot say (a tool's or response format's schema is a JSON Schema, a completion length fits
the model's context) and what the local engine cannot honour. Such a parameter gets a 400
naming it: silently ignoring something that changes the answer would be worse, and a bad
schema must not surface as a grammar error from the engine.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ...budgets import MAX_CHARS_PER_TOKEN
from ...errors import bad_request, context_length_exceeded, max_tokens_beyond_ceiling, max_tokens_too_large
from ...errors import not_supported_locally as unsupported
from ...json.types import Json
from ...openai_tokens import text_of
from . import prediction
from .chat_messages import chat_messages, check_size

# OpenAI's sampling defaults (llama-cpp-python's own differ: temperature 0.2, top_k 40, ...).
OPENAI_SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
# llama.cpp's sampling fields that local models honour beyond OpenAI's (declared, with their
# ranges, as LocalSamplingExtensions in openapi/extensions.yaml; spec/unknown_fields.py
# checks them and refuses every other field the spec does not define).
LLAMA_SAMPLING = ("top_k", "min_p", "repeat_penalty")


# JSON Schema counts 3.0 as an integer, so the spec lets integral floats through where it
# says integer; the engine needs ints.
# Per-token work a request may ask for (issue #33): each bias is applied, each stop sequence
# searched for, at every token.
MAX_LOGIT_BIAS = 1024
MAX_STOP_CHARS = 1000
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


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_text: str) -> str | None:
    # Cached by the schema's text: clients send the same tools with every request, and a
    # check takes about 0.9 ms (a two-property schema, measured here).
    try:
        Draft202012Validator.check_schema(json.loads(schema_text))
    except SchemaError as exc:
        return f"{exc.message} (at schema{''.join(f'[{part!r}]' for part in exc.path)})"
    except RecursionError:
        return "it is nested too deeply"
    return None


# What a schema may ask of the grammar it becomes (issue #33): llama.cpp's converter writes
# every property and enum value into the grammar. OpenAI's structured outputs allow 5000
# properties and 1000 enum values in all. (Repetitions past the grammar's budget, 'maxLength':
# 524288, are served: the engine rewrites them, schema_bounds.py.)
MAX_SCHEMA_PROPERTIES = 5000
MAX_SCHEMA_ENUM_VALUES = 1000


def _expansion_problem(schema: Any) -> str | None:
    """What in ``schema`` would expand past the grammar's budget, if anything."""
    properties = enum_values = 0
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("properties"), dict):
            properties += len(node["properties"])
        if isinstance(node.get("enum"), list):
            enum_values += len(node["enum"])
        if properties > MAX_SCHEMA_PROPERTIES:
            return f"it has more than {MAX_SCHEMA_PROPERTIES} properties"
        if enum_values > MAX_SCHEMA_ENUM_VALUES:
            return f"it has more than {MAX_SCHEMA_ENUM_VALUES} enum values"
        stack.extend(value for value in node.values() if isinstance(value, (dict, list)))
    return None


def _check_schema(schema: Any, param: str, what: str, code: str) -> None:
    """A 400 naming ``param`` unless ``schema`` is a JSON Schema within the grammar's budget:
    a bad one must never reach the grammar converter (which fails in its own words, or not at
    all), nor one it would expand past what a grammar should hold."""
    try:
        problem = _schema_problem(json.dumps(schema, sort_keys=True)) or _expansion_problem(schema)
    except RecursionError:
        problem = "it is nested too deeply"
    if problem:
        raise bad_request(f"Invalid schema for {what}: {problem}.", param, code)


def _tools(request: Json) -> tuple[list[Json], Any]:
    """The function tools the model may call, and the tool_choice, checked."""
    declared = request.get("tools") or []
    for index, tool in enumerate(declared):
        if tool.get("type") != "function":
            raise unsupported(f"tools[{index}].type", "only function tools")
        function = tool["function"]
        if function.get("parameters") is not None:
            _check_schema(
                function["parameters"],
                f"tools[{index}].function.parameters",
                f"function '{function['name']}'",
                "invalid_function_parameters",
            )
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
    if request.get("grammar") is not None:
        if forced or kind != "text":
            raise bad_request(
                "'grammar' cannot be combined with 'response_format' or a required tool call.", "grammar", "invalid_value"
            )
        return gbnf(request["grammar"])
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
        json_schema = response_format["json_schema"]
        schema = json_schema.get("schema") or {}
        _check_schema(
            schema,
            "response_format.json_schema.schema",
            f"response_format '{json_schema.get('name', '')}'",
            "invalid_json_schema",
        )
        # strict: the engine refuses a bound it cannot keep rather than serve it unkept.
        return {"kind": "json_schema", "schema": schema, **({"strict": True} if json_schema.get("strict") is True else {})}
    if kind != "text":
        raise unsupported("response_format", f"'{kind}' output")
    return None


def gbnf(grammar: str | None) -> Json | None:
    """The ``structure`` of llama.cpp's ``grammar`` extension: the client's own GBNF (a
    grammar the engine cannot parse is its 400, param ``grammar``)."""
    return None if grammar is None else {"kind": "gbnf", "grammar": grammar}


def _max_tokens(param: str, value: int | None, n_ctx: int, minimum: int = 1, refuse: bool = False, ceiling: int | None = None) -> int | None:
    """A completion length bound, refused in OpenAI's words when out of range (the spec
    bounds neither chat parameter). Beyond the model's context it is fitted to the room the
    prompt leaves (the engine: engine/admission.py), as llama.cpp's server, Ollama and LM
    Studio do, for agents that send 32000 to a model they do not know (issue #49); or
    refused, as OpenAI does, where the model's ``max_tokens_beyond_context`` is ``refuse``.
    Above ``ceiling`` (settings/model.py) no model answers it: refused, before any work."""
    if value is None:
        return None
    if value < minimum:
        raise bad_request(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
            param,
            "integer_below_min_value",
        )
    if value > n_ctx and refuse:
        raise max_tokens_too_large(param, value, n_ctx)
    if ceiling is not None and value > ceiling:
        raise max_tokens_beyond_ceiling(param, value, ceiling)
    return value


def _sampling(request: Json) -> Json:
    params: dict[str, Any] = dict(OPENAI_SAMPLING)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", *LLAMA_SAMPLING):
        if request.get(name) is not None:
            params[name] = request[name]
    stop = request.get("stop")
    params["stop"] = [stop] if isinstance(stop, str) else (stop or [])
    if any(len(sequence) > MAX_STOP_CHARS for sequence in params["stop"]):
        # Every stop sequence is looked for in the text at every token.
        raise bad_request(f"Invalid 'stop': a stop sequence can be at most {MAX_STOP_CHARS} characters.", "stop", "invalid_value")
    if len(request.get("logit_bias") or {}) > MAX_LOGIT_BIAS:
        raise bad_request(f"Invalid 'logit_bias': at most {MAX_LOGIT_BIAS} tokens can be biased.", "logit_bias", "invalid_value")
    if request.get("logit_bias"):
        try:
            params["logit_bias"] = {int(token): float(bias) for token, bias in request["logit_bias"].items()}
        except ValueError:
            raise bad_request("'logit_bias' keys must be token ids.", "logit_bias", "invalid_value") from None
        if any(not -100 <= bias <= 100 for bias in params["logit_bias"].values()):
            raise bad_request(
                "Invalid 'logit_bias': bias values must be between -100 and 100.", "logit_bias", "invalid_value"
            )
    params["n"] = request.get("n") or 1
    params["stream"] = bool(request.get("stream"))
    params["include_usage"] = bool((request.get("stream_options") or {}).get("include_usage"))
    return params


def _refuse(request: Json, checks: dict[str, tuple[Any, str]]) -> None:
    for param, (accepted, why) in checks.items():
        value = request.get(param)
        if value is not None and not accepted(value):
            raise unsupported(param, why)


def chat_params(request: Json, n_ctx: int, beyond_context: str = "fit", ceiling: int | None = None) -> Json:
    """Engine parameters of a chat request for a model of context ``n_ctx`` per sequence
    (``beyond_context``: the model's ``max_tokens_beyond_context``; ``ceiling``: its ``max_tokens_ceiling``)."""
    request = with_integers(request)
    _refuse(
        request,
        {
            "functions": (lambda functions: not functions, "the deprecated 'functions'; use 'tools'"),
            "function_call": (lambda choice: choice == "none", "the deprecated 'function_call'; use 'tool_choice'"),
            "audio": (lambda _: False, "no audio output"),
            "modalities": (lambda modalities: set(modalities) <= {"text"}, "text output only"),
            "web_search_options": (lambda _: False, "no web search"),
            "moderation": (lambda _: False, "no moderation model runs beside them"),
            "verbosity": (lambda verbosity: verbosity == "medium", "no verbosity control"),
        },
    )
    if request.get("top_logprobs") and not request.get("logprobs"):
        raise bad_request("'logprobs' must be true when 'top_logprobs' is used.", "top_logprobs", "invalid_value")
    # The newer name wins where both are given, as at OpenAI.
    limit = "max_completion_tokens" if request.get("max_completion_tokens") is not None else "max_tokens"
    offered, choice = _tools(request)
    check_size(request["messages"], n_ctx)
    return {
        "messages": chat_messages(request["messages"]),
        # Rendered with the chat template in the model's tool format (engine/prompts.py).
        "tools": offered or None,
        "tool_choice": choice if offered else None,
        "max_tokens": _max_tokens(limit, request.get(limit), n_ctx, refuse=beyond_context == "refuse", ceiling=ceiling),
        "max_tokens_param": limit,  # the engine fits it, or refuses it naming it (engine/admission.py)
        "refuse_beyond_context": beyond_context == "refuse",
        "logprobs": bool(request.get("logprobs")),
        "top_logprobs": request.get("top_logprobs") or 0,
        "structure": _structure(request, offered, choice),
        "tool_names": sorted(tool["function"]["name"] for tool in offered),
        "prediction": prediction.text(request, n_ctx),
        # Honoured or refused once the model's reasoning family is known (reasoning/).
        "reasoning_effort": request.get("reasoning_effort"),
        **_sampling(request),
    }


def _items(value: Any, param: str, native: bool) -> list[str | list[int]]:
    """A string, a token array, or a list of either, as a list of prompts: token arrays are
    OpenAI's ids read as their text (openai_tokens.py), or, for a model with ``token_ids:
    native``, its own ids."""
    if isinstance(value, str):
        return [value]
    if value and all(_is_token(token) for token in value):
        items: list[str | list[int]] = [_tokens(value)]
    else:
        items = [item if isinstance(item, str) else _tokens(item) for item in value]
    if native:
        return items
    many = len(items) > 1
    return [item if isinstance(item, str) else text_of(item, f"{param}[{index}]" if many else param) for index, item in enumerate(items)]


def completion_prompts(prompt: Any, native: bool = False) -> list[str | list[int]]:
    """The prompts of a request: a string, a token array, or a list of either."""
    if prompt is None:
        # The spec's default prompt: "<|endoftext|>", i.e. generate from nothing.
        return [""]
    if not prompt and not isinstance(prompt, str):
        raise bad_request("'prompt' must not be an empty list.", "prompt", "invalid_value")
    return _items(prompt, "prompt", native)


def completion_params(request: Json, n_ctx: int, native: bool = False, beyond_context: str = "fit", ceiling: int | None = None) -> Json:
    request = with_integers(request)
    _refuse(
        request,
        {
            "best_of": (lambda n: n == (request.get("n") or 1), "best_of would rank choices; only best_of = n"),
            "suffix": (lambda _: False, "the models have no fill-in-the-middle mode"),
        },
    )
    logprobs = request.get("logprobs")
    prompt = request.get("prompt")
    # A token array is measured before it is read as text: its ids must fit the context.
    arrays = ([prompt] if isinstance(prompt[0], int) else prompt) if isinstance(prompt, list) and prompt else ()
    for ids in arrays:
        if isinstance(ids, list) and len(ids) > n_ctx:
            raise context_length_exceeded(len(ids), n_ctx, "prompt")
    prompts = completion_prompts(prompt, native)
    for prompt in prompts:
        if len(prompt) > (n_ctx if isinstance(prompt, list) else n_ctx * MAX_CHARS_PER_TOKEN):
            raise context_length_exceeded(len(prompt) if isinstance(prompt, list) else len(prompt) // MAX_CHARS_PER_TOKEN, n_ctx, "prompt")
    return {
        "prompts": prompts,
        # null means the default, as OpenAI reads it; 0 (the spec's minimum) only echoes
        # or scores the prompt.
        "max_tokens": 16 if request.get("max_tokens") is None else _max_tokens(
            "max_tokens", request["max_tokens"], n_ctx, minimum=0, refuse=beyond_context == "refuse", ceiling=ceiling
        ),
        "refuse_beyond_context": beyond_context == "refuse",
        "logprobs": logprobs is not None,
        "top_logprobs": logprobs or 0,
        "echo": bool(request.get("echo")),
        "structure": gbnf(request.get("grammar")),
        **_sampling(request),
    }


def embedding_inputs(request: Json, native: bool = False) -> list[str | list[int]]:
    # ``dimensions`` is checked by the engine, which knows the model's embedding size.
    value = request["input"]
    if not value and not isinstance(value, str):
        raise bad_request("'input' must not be empty.", "input", "invalid_value")
    return _items(value, "input", native)
