"""Request fields the operation does not define: refused for local models, as OpenAI
refuses them; relayed as sent for upstream ones.

The OpenAI document leaves almost every request object open (no ``additionalProperties:
false``), so schema validation alone accepts ``{"foo_unknown": 1}`` - and a field we do not
know is one whose effect we silently drop, which the README promises never happens. An
upstream API may define it (vLLM's and providers' extensions): there we relay it untouched.

What counts as defined: the properties the body schema names, through ``allOf`` and the
``anyOf``/``oneOf`` branches that match the value (by their ``enum``/``const`` properties
and required keys, which are defined too, so ``tool_call_id`` on a user message is unknown while it is known on
a tool message); an object schema with ``additionalProperties`` or no properties at all
is free-form (``metadata``, a function's ``parameters``). Plus the documented local
extensions of the extension document (``LocalSamplingExtensions``: llama.cpp's ``top_k``,
``min_p``, ``repeat_penalty``, ``grammar``), for the operations that honour them.

The wording is OpenAI's: the legacy operations (chat, completions, embeddings) answer a
top-level field with ``Unrecognized request argument supplied: <name>`` (``param`` and
``code`` null), a nested one with ``Unknown parameter: '<path>'.`` (code
``unknown_parameter``), which the newer APIs (Responses, Conversations) use at every depth.
A chat body walks in about 0.15 ms (measured: four messages, a tool and a json_schema format, on
the 2-core VM); a list of 200 000 alike messages in 0.1 s (alike items are walked once). An
item's verdict is kept across requests (``Verdicts``): an agent's next turn walks only what
is new in it (Codex's later turns, 44-46 KB: 2.0-2.9 -> 0.9-1.0 ms, their 2-3 new items walked).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jsonschema_rs

from ..errors import OpenAIError, bad_request, unknown_parameter, unrecognized_arguments
from ..settings import PROJECT_ROOT
from .loader import EXTENSIONS_SPEC, load_document

# Operations whose local backend honours the extension fields (backends/llama/params.py).
EXTENDED_OPERATIONS = frozenset({"createChatCompletion", "createCompletion"})
# Operations OpenAI still answers in its legacy wording for a top-level unknown field.
LEGACY_OPERATIONS = frozenset({"createChatCompletion", "createCompletion", "createEmbedding"})
_COMPOSITIONS = ("allOf", "anyOf", "oneOf")
_MAX_DEPTH = 64


@functools.cache
def extension_schema(spec_dir: Path = PROJECT_ROOT / "openapi") -> dict[str, Any]:
    """The local sampling extensions' object schema, from the extension document."""
    document = load_document(spec_dir / EXTENSIONS_SPEC, None)
    return document["components"]["schemas"]["LocalSamplingExtensions"]


@functools.cache
def _extension_validators() -> dict[str, Any]:
    return {name: jsonschema_rs.validator_for(schema) for name, schema in extension_schema()["properties"].items()}


def _matches(branch: dict, value: Any) -> bool:
    """Whether a composition branch plausibly describes ``value``: its required keys are
    there and its ``enum``/``const`` properties agree (a cheap discriminator)."""
    if isinstance(value, dict):
        if branch.get("type") not in (None, "object") and not (isinstance(branch.get("type"), list) and "object" in branch["type"]):
            return False
        if any(key not in value for key in branch.get("required", ())):
            return False
        for key, prop in (branch.get("properties") or {}).items():
            if key in value and isinstance(prop, dict):
                if "const" in prop and value[key] != prop["const"]:
                    return False
                if "enum" in prop and value[key] not in prop["enum"] and value[key] is not None:
                    return False
        return all(_matches(part, value) for part in branch.get("allOf", ()) if isinstance(part, dict))
    if isinstance(value, list):
        return branch.get("type") in (None, "array") or (isinstance(branch.get("type"), list) and "array" in branch["type"])
    return branch.get("type") not in ("object", "array")


def _parts(schema: dict, value: Any, depth: int = 0) -> list[dict]:
    """The schema nodes that together describe ``value`` (compositions flattened)."""
    if depth > _MAX_DEPTH:
        return []
    parts = [schema]
    for keyword in _COMPOSITIONS:
        branches = [branch for branch in schema.get(keyword, ()) if isinstance(branch, dict)]
        if keyword != "allOf":
            matching = [branch for branch in branches if _matches(branch, value)]
            branches = matching or branches
        for branch in branches:
            parts.extend(_parts(branch, value, depth + 1))
    return parts


# Values a signature may hold: an object of a few fields, its parts (a message's content),
# a function tool with its parameters' schema (Codex's: 3-143 values; its 9 tools took 0.5 ms
# to walk, 0.17 ms to sign).
_SIGNATURE_NODES = 256


def _signature(value: Any) -> tuple[tuple, int] | None:
    """What decides the result for a small object (its keys, its short values, those of the
    small objects and lists inside it), and how many values it holds: the items of a long
    list (a chat's messages, with their content parts) mostly share it, and are walked once."""
    if not isinstance(value, dict):
        return None
    left = [_SIGNATURE_NODES]
    shape = _shape(value, left)
    return None if shape is None else (shape, _SIGNATURE_NODES - left[0])


def _shape(value: Any, left: list[int]) -> Any:
    left[0] -= 1
    if left[0] < 0:
        return None
    if isinstance(value, str):
        return value if len(value) <= 64 else ""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dict, list)):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        shape = []
        for key, item in pairs:
            inner = _shape(item, left)
            if inner is None and item is not None:
                return None
            shape.append((key, inner))
        return (type(value).__name__, tuple(shape))
    return None


FieldPath = tuple  # keys and list indexes from the body down to a field


class Verdicts:
    """The unknown fields found in the items of lists, by the item schemas and the items'
    signatures, kept across requests (bounded, least recently used out): an agent sends its
    whole conversation and its tools again with every turn, and each was walked before.
    Codex's later turns (6-14 input items, 9 tools) walked in 2.0-2.9 ms; with the earlier
    turns' verdicts here, 0.9-1.0 ms, their 2-3 new items walked (the shared 2-core VM).

    A verdict is a function of the schema and the signature alone (``_signature``: what
    decides it; no tenant, key or setting enters the walk): any tenant sending the same shape
    would be given the same fields, so a shared verdict would never be a wrong one. They are
    kept per tenant all the same (the key starts with the owner): a signature holds a body's
    short strings, and a check that ran faster for a shape another tenant sent would tell
    that it was sent. An agent's turns come from one tenant, and lose nothing. The entries
    hold at most ``NODES`` signature values in all (each a short string, a number or a key;
    with the paths found, at most as many: under 20 MB, typically far less). The schemas are
    kept beside their entries so that their ids, the key, are never reused."""

    NODES = 65_536

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, tuple[list[dict], list[FieldPath], int]] = OrderedDict()
        self._nodes = 0
        self._lock = threading.Lock()  # large bodies are checked in threads (off_loop.py)

    def get(self, tenant: str, schemas: list[dict], depth: int, signature: tuple[tuple, int]) -> list[FieldPath] | None:
        key = (tenant, *map(id, schemas), depth, signature[0])
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or len(entry[0]) != len(schemas) or any(a is not b for a, b in zip(entry[0], schemas)):
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, tenant: str, schemas: list[dict], depth: int, signature: tuple[tuple, int], found: list[FieldPath]) -> None:
        key = (tenant, *map(id, schemas), depth, signature[0])
        nodes = signature[1] + sum(len(path) for path in found)
        with self._lock:
            replaced = self._entries.pop(key, None)
            self._nodes += nodes - (replaced[2] if replaced is not None else 0)
            self._entries[key] = (list(schemas), found, nodes)
            while self._nodes > self.NODES:
                self._nodes -= self._entries.popitem(last=False)[1][2]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nodes(self) -> int:
        return self._nodes


class _Unkept(Verdicts):
    """No verdicts kept (a list too long to keep its items')."""

    def get(self, tenant: str, schemas: list[dict], depth: int, signature: tuple[tuple, int]) -> list[FieldPath] | None:
        return None

    def put(self, tenant: str, schemas: list[dict], depth: int, signature: tuple[tuple, int], found: list[FieldPath]) -> None:
        return None


VERDICTS = Verdicts()
_NO_VERDICTS = _Unkept()
# The longest list whose items' verdicts are kept: a long agent conversation's items.
KEPT_ITEMS = 4096


def _unknown(schemas: list[dict], value: Any, depth: int = 0, tenant: str = "") -> list[FieldPath]:
    """The paths (below ``value``) of the keys that none of ``schemas`` defines (``tenant``:
    whose verdicts to look up, ``Verdicts``)."""
    if depth > _MAX_DEPTH:
        return []
    parts = [part for schema in schemas if isinstance(schema, dict) for part in _parts(schema, value)]
    if isinstance(value, list):
        items = [part["items"] for part in parts if isinstance(part.get("items"), dict)]
        if not items:
            return []
        found: list[FieldPath] = []
        seen: dict[tuple, list[FieldPath]] = {}  # this list's (no lock: 200 000 alike items in 0.26 s)
        # A longer list than a conversation would push every other verdict out, one by one
        # (200 000 distinct items took 7.4 s against 4.4 s without keeping theirs).
        verdicts = VERDICTS if len(value) <= KEPT_ITEMS else _NO_VERDICTS
        for index, item in enumerate(value):
            if not isinstance(item, (dict, list)):
                continue  # a scalar has no fields (walking each cost ~12 us: 33 s for 2.79 M strings)
            signature = _signature(item)
            relative = seen.get(signature[0]) if signature is not None else None
            if relative is None and signature is not None:
                relative = verdicts.get(tenant, items, depth, signature)
            if relative is None:
                relative = _unknown(items, item, depth + 1, tenant)
                if signature is not None:
                    verdicts.put(tenant, items, depth, signature, relative)
            if signature is not None:
                seen[signature[0]] = relative
            found += [(index, *path) for path in relative]
        return found
    if not isinstance(value, dict):
        return []
    if any("$ref" in part or "$recursiveRef" in part or part.get("additionalProperties") not in (None, False) or "patternProperties" in part for part in parts):
        return []  # free-form (or a reference left unresolved: nothing to say about it)
    properties: dict[str, list[dict]] = {}
    for part in parts:
        for key, prop in (part.get("properties") or {}).items():
            properties.setdefault(key, []).append(prop)
    for part in parts:
        # A key the schema requires is defined even where its properties forget it (the
        # document's MCPApprovalResponse requires `request_id` and names `approval_request_id`).
        for key in part.get("required") or ():
            properties.setdefault(key, [])
    if not properties and not any(part.get("additionalProperties") is False for part in parts):
        return []  # an object without any named property is free-form
    found = []
    for key, item in value.items():
        if key not in properties:
            found.append((key,))
        elif properties[key]:
            found += [(key, *path) for path in _unknown(properties[key], item, depth + 1, tenant)]
    return found


def _name(path: FieldPath) -> str:
    """OpenAI's name of a field: ``messages[0].content``."""
    return "".join(f"[{key}]" if isinstance(key, int) else (f".{key}" if i else key) for i, key in enumerate(path))


def unknown_paths(schema: dict, body: dict, operation_id: str | None, tenant: str = "") -> list[FieldPath]:
    """The fields of ``body`` the operation does not define, as paths of keys (``tenant``:
    who sent it, whose earlier verdicts are looked up: ``Verdicts``)."""
    found = _unknown([schema], body, 0, tenant)
    if operation_id in EXTENDED_OPERATIONS:
        found = [path for path in found if not (len(path) == 1 and path[0] in extension_schema()["properties"])]
    if operation_id == "createChatCompletion":
        found = [path for path in found if not _reasoning_passed_back(path, body)]
    return found


def _reasoning_passed_back(path: FieldPath, body: dict) -> bool:
    """An assistant message's ``reasoning_content`` (text): an earlier answer's reasoning sent
    back, as DeepSeek's and llama.cpp's APIs take it and reasoning clients send it; the
    templates that read it get it (backends/llama/reasoning/)."""
    if len(path) != 3 or path[0] != "messages" or path[2] != "reasoning_content":
        return False
    message = body["messages"][path[1]]
    return message.get("role") == "assistant" and isinstance(message.get("reasoning_content"), str)


def unknown_fields(schema: dict, body: dict, operation_id: str | None, tenant: str = "") -> list[str]:
    """The fields of ``body`` the operation does not define, as OpenAI names them."""
    return [_name(path) for path in unknown_paths(schema, body, operation_id, tenant)]


def extension_error(body: dict, operation_id: str | None) -> OpenAIError | None:
    """A 400 for an extension field whose value its schema refuses (local models only)."""
    if operation_id not in EXTENDED_OPERATIONS:
        return None
    for name, validator in _extension_validators().items():
        if body.get(name) is not None and not validator.is_valid(body[name]):
            schema = extension_schema()["properties"][name]
            return bad_request(f"Invalid value for '{name}': {schema.get('description', '').strip()}", name, "invalid_value")
    return None


def unknown_fields_error(fields: list[str], operation_id: str | None) -> OpenAIError:
    """OpenAI's 400 for ``fields`` (non-empty)."""
    top = [field for field in fields if "." not in field and "[" not in field]
    if operation_id in LEGACY_OPERATIONS and top:
        return unrecognized_arguments(top)
    return unknown_parameter(fields[0])
