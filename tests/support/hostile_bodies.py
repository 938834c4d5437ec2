"""Hostile request bodies built from the OpenAI document (issue #39): for a schema, the
smallest valid value, and that value with one of its arrays filled with its smallest valid
item, or one of its strings made as long as valid, until the body reaches a size.

The builder reads the document as the server does (``$ref``s followed, ``anyOf`` and
``oneOf`` branches chosen by a seeded draw, so each run sees other branches and the replay
of a seed the same ones). The bodies aim at validity, they do not promise it: a pattern or
a branch's condition may still make the server answer 400, which is an answer too.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
MAX_DEPTH = 8
# Fields that bound what a request costs beyond its body: their smallest valid value.
GENERATION_BOUNDS = {"max_tokens": 1, "max_completion_tokens": 1, "max_output_tokens": 16, "n": 1}
# Where every body can grow, whatever its schema: a property the schema does not name, an
# object of as many keys as fit (a body of enums and integers alone has no other room; the
# unknown-field rule walks it before it refuses it).
UNKNOWN = ("hostile_unknown", {"type": "object", "additionalProperties": {"type": "string"}})
# Where the grown part goes in the encoded body (no schema's value holds control characters).
PLACE = "\x00hostile-slot\x00"
# Nesting past what a request may (64 levels): one step's opening and closing bytes, and the
# levels it adds.
DEEP = 65
NESTINGS = {"arrays": (b"[", b"]", 1), "objects": (b'{"k":', b"}", 1), "both": (b'[{"k":', b"}]", 2)}
FORMATS = {"uri": "https://a.example", "date-time": "2025-01-01T00:00:00Z", "email": "a@a.example", "uuid": "00000000-0000-0000-0000-000000000000"}


@functools.lru_cache(maxsize=16)
def wide_map(item: bytes, count: int) -> bytes:
    """``{"k0": item, "k1": item, ...}`` of ``count`` keys, encoded as ``compact`` would. The
    same few (item, size) pairs come back across operations, each up to a million keys: 20
    million formatted keys were 5 of the hostile generator's 15 CPU-s."""
    return b'{"k' + (b'":' + item + b',"k').join(map(b"%d".__mod__, range(count))) + b'":' + item + b"}"


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Slot:
    """A place in a body that can be made large: an array (filled with its smallest item)
    or a string; ``chain`` is each key on the way there with the schema drawn for it."""

    chain: tuple[tuple[str, Json], ...]
    kind: str  # "array", "string" or "map" (an object of any keys)

    @property
    def schema(self) -> Json:
        return self.chain[-1][1]

    def __str__(self) -> str:
        return f"{self.kind} at {'.'.join(key for key, _ in self.chain)}"


class Builder:
    def __init__(self, document: Json, rng: random.Random, model: str | None = None) -> None:
        self.components = document.get("components", {})
        self.rng = rng
        self.model = model  # what a "model" field names: one the server has

    def resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            section, name = schema["$ref"].split("/")[2:4]
            schema = self.components[section][name]
        return schema

    def parts(self, schema: Any, depth: int = 0) -> Json:
        """One concrete schema for a value: ``allOf`` merged, one ``anyOf``/``oneOf`` branch drawn."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}
        merged = {key: value for key, value in schema.items() if key not in ("allOf", "anyOf", "oneOf")}
        for part in schema.get("allOf", ()):
            part = self.parts(part, depth + 1)
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            merged["required"] = [*merged.get("required", []), *part.get("required", [])]
            for key, value in part.items():
                merged.setdefault(key, value)
        branches = [branch for branch in schema.get("anyOf", schema.get("oneOf", ())) if self.resolve(branch).get("type") != "null"]
        if branches:
            if depth > MAX_DEPTH:  # deep in a recursive schema: the plainest branch
                branches = sorted(branches, key=lambda b: len(json.dumps(self.resolve(b), default=str)))[:1]
            chosen = self.parts(self.rng.choice(branches), depth + 1)
            for key, value in chosen.items():
                if key in ("properties", "required"):
                    merged[key] = {**merged.get(key, {}), **value} if key == "properties" else [*merged.get(key, []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def smallest(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        """The smallest valid value of ``schema`` (the field ``name``'s)."""
        return self._smallest(self.parts(schema, depth), name, depth)

    def _smallest(self, schema: Json, name: str, depth: int) -> Any:
        if name == "model" and self.model is not None:
            return self.model
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return min((value for value in schema["enum"] if value is not None), key=lambda v: len(json.dumps(v)), default=None)
        kind = schema.get("type")
        kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
        if kind == "object" or (kind is None and "properties" in schema):
            properties = schema.get("properties", {})
            required = dict.fromkeys(schema.get("required", []))
            required.update({key: None for key in GENERATION_BOUNDS if key in properties})
            return {key: self.smallest(properties.get(key, {}), key, depth + 1) for key in required} if depth <= MAX_DEPTH else {}
        if kind == "array":
            return [self.smallest(schema.get("items", {}), name, depth + 1) for _ in range(schema.get("minItems", 0))]
        if kind == "string":
            return FORMATS.get(schema.get("format"), "a" * schema.get("minLength", 0))
        if kind in ("integer", "number"):
            low = GENERATION_BOUNDS.get(name, 0)
            if "minimum" in schema:
                low = max(low, schema["minimum"])
            if "exclusiveMinimum" in schema:
                low = max(low, schema["exclusiveMinimum"] + 1)
            return min(low, schema["maximum"]) if "maximum" in schema else low
        if kind == "boolean":
            return False
        return None if kind == "null" else {}

    def slots(self, schema: Any, chain: tuple[tuple[str, Json], ...] = (), depth: int = 0) -> list[Slot]:
        """The arrays and strings reachable through objects' properties (optional ones too),
        and at the top an unknown property (``UNKNOWN``)."""
        found: list[Slot] = [] if chain else [Slot((UNKNOWN,), "map")]
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if chain and "array" in kinds:
            found.append(Slot(chain, "array"))
        if chain and "string" in kinds and not {"enum", "const", "format"} & schema.keys():
            found.append(Slot(chain, "string"))
        if chain and isinstance(schema.get("additionalProperties"), dict):
            found.append(Slot(chain, "map"))  # metadata, logit_bias: as many keys as fit
        if ("object" in kinds or "properties" in schema) and depth < 4:
            for key, value in schema.get("properties", {}).items():
                if key not in GENERATION_BOUNDS and key not in ("model", "stream"):
                    part = self.parts(value, depth + 1)
                    found += self.slots(part, (*chain, (key, part)), depth + 1)
        return found

    def filled(self, schema: Json, slot: Slot, size: int, fixed: Json | None = None) -> bytes:
        """The smallest valid body of ``schema`` (drawn: ``parts``) with ``slot`` grown until
        the body is about ``size`` bytes, then ``fixed``'s top-level fields set. The grown
        part is joined as bytes into the encoded rest: the same bytes ``json.dumps`` writes
        for the whole, without building and encoding a million-item value (0.1-0.3 s a
        body, most of the hostile generator's own CPU)."""
        body, node, key = self._around(schema, slot)
        room = max(size - len(compact(body)) - 64, 0)
        if slot.kind == "string":
            grown = compact("a" * min(room, slot.schema.get("maxLength", room)))
        elif slot.kind == "map":
            item = compact(self.smallest(slot.schema["additionalProperties"], "", 1))
            grown = wide_map(item, max(room // (len(item) + 12), 1))
        else:
            item = compact(self.smallest(slot.schema.get("items", {}), key, 1))
            grown = b"[" + b",".join([item] * max(room // (len(item) + 1), 1)) + b"]"
        return self._placed(body, node, key, grown, fixed)

    def deepened(self, schema: Json, slot: Slot, size: int, fixed: Json | None = None) -> tuple[bytes, str]:
        """(body, what it is): the smallest valid body of ``schema`` with ``slot`` holding
        nested arrays, objects or both, as many levels as drawn (past ``DEEP``, up to what
        ``size`` holds), and a string beside or inside them making the body ``size`` bytes
        (issue #47: the reader of a large body is not a small one's). Whatever the slot's
        type, it is too deep to read: a 400 before anything else is looked at."""
        body, node, key = self._around(schema, slot)
        room = max(size - len(compact(body)) - len(compact(fixed or {})) - 64, 0)
        shape = self.rng.choice(sorted(NESTINGS))
        opens, closes, each = NESTINGS[shape]
        most = max(room - 8, 0) // (len(opens) + len(closes)) * each
        levels = min(round(math.exp(self.rng.uniform(math.log(DEEP), math.log(max(most, DEEP))))), most) // each
        filler = compact("a" * max(room - levels * (len(opens) + len(closes)) - 8, 0))
        inside = self.rng.random() < 0.5
        nested = opens * levels + (filler if inside else b"0") + closes * levels
        grown = nested if inside else b"[" + filler + b"," + nested + b"]"
        where = "the string inside" if inside else "after a string"
        return self._placed(body, node, key, grown, fixed), f"{levels * each} levels of {shape}, {where}, at {slot}"

    def _around(self, schema: Json, slot: Slot) -> tuple[Json, Json, str]:
        """The smallest body of ``schema``, the object holding ``slot``, and its key there."""
        body = self._smallest(schema, "", 0)
        node = body
        for key, part in slot.chain[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = self._smallest(part, key, 1)
            node = node[key]
        key = slot.chain[-1][0]
        node[key] = None
        return body, node, key

    @staticmethod
    def _placed(body: Json, node: Json, key: str, grown: bytes, fixed: Json | None) -> bytes:
        node[key] = PLACE
        body.update(fixed or {})
        encoded = compact(body)
        assert encoded.count(compact(PLACE)) == 1, "the slot's place is not unique in the body"
        return encoded.replace(compact(PLACE), grown)
