"""The usage families, one row each: what OpenAI's usage operation answers for a family
(``result``: serving/usage.py), what its usage costs (``line_items``: serving/metering/prices.py),
and the most a request of it can use, held against a hard spend limit before it is served
(``most``: serving/metering/holds.py, whose docstring gives the rules).

A family is what the usage accounting records an answer under (storage/usage.py's names):
the tokens of completions, embeddings and moderations, a speech's characters, a
transcription's seconds, forwarded images, file_search calls, vector store bytes. Seven
kinds of row, one per way of counting; a new family is one row in ``FAMILIES`` (and its
usage operation in controllers/usage.py), not a branch in each of the three places.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..settings.admin import Price
from ..json.types import Json
from ..storage.usage import (
    AUDIO_SPEECHES,
    AUDIO_TRANSCRIPTIONS,
    COMPLETIONS,
    EMBEDDINGS,
    FILE_SEARCH_CALLS,
    IMAGES,
    MODERATIONS,
    VECTOR_STORES,
    Measured,
    UsageTotals,
)

Item = tuple[str, Decimal, str, Decimal]  # (line item, quantity, unit, USD each), before its model's name
MILLION, GIGABYTE = Decimal(1_000_000), Decimal(1_000_000_000)
# The group_by fields most results carry (null unless grouped by and known here).
MODEL_FIELDS = ("project_id", "user_id", "api_key_id", "model")
# The caps a body may name for its output, per answer (the first present counts).
OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens", "max_response_output_tokens")
# Template tokens around each value (a message's role markers, a tool's punctuation).
PER_VALUE = 4


def text_bytes(value: Any) -> int:
    """Every key and string of ``value`` in UTF-8 bytes, and ``PER_VALUE`` for each value."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        total += PER_VALUE
        if isinstance(item, str):
            total += len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, dict):
            total += sum(len(key.encode("utf-8", "surrogatepass")) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _count(body: dict, name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _quantity(usage: Any, name: str) -> Decimal:
    return Decimal(str(getattr(usage, name, 0) or 0))


class UsageFamily:
    """One family's row. ``usage`` is a ``Measured`` (one answer) or a ``UsageTotals`` (a
    bucket's); ``body`` a request's JSON body, None when it has none."""

    def __init__(self, name: str, result_object: str, result_fields: tuple[str, ...] = MODEL_FIELDS) -> None:
        self.name = name
        self.result_object = result_object  # OpenAI's object name of its usage results
        self.result_fields = result_fields

    def result(self, totals: UsageTotals) -> Json:
        """What one usage result says of ``totals``, beside its object and group fields."""
        raise NotImplementedError

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        """What ``usage`` costs at ``price``, per line item (zero ones are dropped later)."""
        raise NotImplementedError

    def most(self, body: Json | None, room: int | None, input_tokens: int | None) -> Measured | None:
        """The largest usage a request of this family can be answered with (None: unbounded).
        By default nothing is held: its usage is known only once it is answered."""
        return Measured(self.name)


class Tokens(UsageFamily):
    """Embeddings, moderations: input tokens, held by the body's input alone."""

    def result(self, totals: UsageTotals) -> Json:
        return {"input_tokens": totals.input_tokens, "num_model_requests": totals.requests}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        cached = _quantity(usage, "cached_tokens")
        uncached = _quantity(usage, "input_tokens") - cached
        cached_price = price.input if price.cached_input is None else price.cached_input
        return [
            ("input", uncached, "tokens", Decimal(str(price.input)) / MILLION),
            ("cached input", cached, "tokens", Decimal(str(cached_price)) / MILLION),
            ("output", _quantity(usage, "output_tokens"), "tokens", Decimal(str(price.output)) / MILLION),
        ]

    def most(self, body: Json | None, room: int | None, input_tokens: int | None) -> Measured | None:
        if body is None:
            return Measured(self.name)
        return Measured(self.name, input_tokens=text_bytes(body) if input_tokens is None else input_tokens)


class Completions(Tokens):
    """Chat, completions, Responses, Realtime responses: input (cached or not) and output
    tokens; held by the input and the output cap (or the model's room) times the choices."""

    def result(self, totals: UsageTotals) -> Json:
        return {
            "input_tokens": totals.input_tokens,
            "input_cached_tokens": totals.cached_tokens,
            "input_uncached_tokens": totals.input_tokens - totals.cached_tokens,
            "output_tokens": totals.output_tokens,
            "input_text_tokens": totals.input_tokens,
            "output_text_tokens": totals.output_tokens,
            "input_cached_text_tokens": totals.cached_tokens,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "num_model_requests": totals.requests,
        }

    def most(self, body: Json | None, room: int | None, input_tokens: int | None) -> Measured | None:
        if body is None:
            return Measured(self.name)
        input_tokens = text_bytes(body) if input_tokens is None else input_tokens
        if room is not None:  # no longer prompt is served: an image's base64 is not its tokens
            input_tokens = min(input_tokens, room)
        cap = next((count for name in OUTPUT_CAPS if (count := _count(body, name)) is not None), None)
        if room is not None:
            cap = room if cap is None else min(cap, room)
        if cap is None:
            return None
        choices = max(_count(body, "n") or 1, _count(body, "best_of") or 1)
        return Measured(self.name, input_tokens=input_tokens, output_tokens=cap * choices)


class Speeches(UsageFamily):
    """Speech: the characters spoken, held by its ``input``'s."""

    def result(self, totals: UsageTotals) -> Json:
        return {"characters": totals.characters, "num_model_requests": totals.requests}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        return [("characters", _quantity(usage, "characters"), "characters", Decimal(str(price.characters)) / MILLION)]

    def most(self, body: Json | None, room: int | None, input_tokens: int | None) -> Measured | None:
        text = (body or {}).get("input")
        return Measured(self.name, characters=len(text) if isinstance(text, str) else 0)


class Transcriptions(UsageFamily):
    """Transcriptions and translations: the seconds heard (known once decoded: not held)."""

    def result(self, totals: UsageTotals) -> Json:
        return {"seconds": round(totals.seconds), "num_model_requests": totals.requests}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        return [("audio", _quantity(usage, "seconds") / 60, "duration_minutes", Decimal(str(price.audio_minute)))]


class Images(UsageFamily):
    """Forwarded image operations: their images, counted as calls, each at its price (OpenAI
    prices an image of a size and quality: one price here); held by the body's ``n``
    (default 1, OpenAI's; http/forwarded_usage.py)."""

    def result(self, totals: UsageTotals) -> Json:
        return {"images": totals.calls, "num_model_requests": totals.requests}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        return [("images", _quantity(usage, "calls"), "images", Decimal(str(price.image)))]

    def most(self, body: Json | None, room: int | None, input_tokens: int | None) -> Measured | None:
        return Measured(self.name, calls=_count(body or {}, "n") or 1)


class FileSearchCalls(UsageFamily):
    """The file_search tool's calls, priced per 1,000 (counted within a response: not held)."""

    def result(self, totals: UsageTotals) -> Json:
        return {"num_requests": totals.calls}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        return [("calls", _quantity(usage, "calls"), "calls", Decimal(str(price.file_search_calls)) / 1000)]


class VectorStores(UsageFamily):
    """Vector store bytes kept, sampled hourly (serving/admin/sampler.py): a bucket's mean
    over the hours sampled; each sample an hour of its bytes, GB-hours priced per GB-day."""

    def result(self, totals: UsageTotals) -> Json:
        return {"usage_bytes": totals.bytes // max(1, totals.minutes)}

    def line_items(self, price: Price, usage: Any) -> list[Item]:
        gigabyte_hours = _quantity(usage, "bytes") / GIGABYTE
        return [("storage", gigabyte_hours, "gigabyte_hours", Decimal(str(price.vector_store_gb_day)) / 24)]


FAMILIES: dict[str, UsageFamily] = {
    family.name: family
    for family in (
        Completions(COMPLETIONS, "organization.usage.completions.result", (*MODEL_FIELDS, "batch", "service_tier")),
        Tokens(EMBEDDINGS, "organization.usage.embeddings.result"),
        Tokens(MODERATIONS, "organization.usage.moderations.result"),
        Speeches(AUDIO_SPEECHES, "organization.usage.audio_speeches.result"),
        Transcriptions(AUDIO_TRANSCRIPTIONS, "organization.usage.audio_transcriptions.result"),
        FileSearchCalls(FILE_SEARCH_CALLS, "organization.usage.file_searches.result", ("project_id", "user_id", "api_key_id", "vector_store_id")),
        VectorStores(VECTOR_STORES, "organization.usage.vector_stores.result", ("project_id",)),
        Images(IMAGES, "organization.usage.images.result", (*MODEL_FIELDS, "size", "source")),
    )
}
