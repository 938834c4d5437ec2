"""The price table (``prices:`` in the settings): usage turned into money, one line item at a
time, as OpenAI's costs name them (``<model>, input``...).

A model is priced by the first entry whose ``model`` (an id or a glob) matches it; none
matches: it costs nothing (local models, unless priced). The hosted tools' own usage is
priced by entries named after them: ``file_search`` (per 1,000 calls) and ``vector_stores``
(per GB-day kept; sampled hourly: each sample is an hour's worth). Images (forwarded image
operations) are priced per image. Money is computed in
``Decimal``; the spend counters keep whole micro-dollars, each answer's exact cost added
with the fraction left by the ones before (``meter.py``), so that many small answers add up
to what ``/costs`` shows (usage x price) instead of rounding each to nothing.
"""

from __future__ import annotations

import fnmatch
import functools
from decimal import Decimal
from typing import Any

from ...admin_settings import Price
from ...storage.usage import (
    AUDIO_SPEECHES,
    AUDIO_TRANSCRIPTIONS,
    COMPLETIONS,
    EMBEDDINGS,
    FILE_SEARCH_CALLS,
    IMAGES,
    MODERATIONS,
    VECTOR_STORES,
)

MILLION, GIGABYTE = Decimal(1_000_000), Decimal(1_000_000_000)
# The model names the hosted tools' usage is recorded and priced under.
FILE_SEARCH, VECTOR_STORE_STORAGE = "file_search", "vector_stores"
TOKEN_FAMILIES = (COMPLETIONS, EMBEDDINGS, MODERATIONS)
LineItem = tuple[str, Decimal, str, Decimal]  # (line item, quantity, unit, USD)


def _quantity(usage: Any, name: str) -> Decimal:
    return Decimal(str(getattr(usage, name, 0) or 0))


class PriceTable:
    def __init__(self, prices: list[Price]) -> None:
        self.prices = list(prices)

    @functools.lru_cache(maxsize=4096)
    def price(self, model: str) -> Price | None:
        return next((price for price in self.prices if fnmatch.fnmatchcase(model, price.model)), None)

    def line_items(self, family: str, model: str, usage: Any) -> list[LineItem]:
        """What ``usage`` (a ``Measured`` or a ``UsageTotals`` of ``family``) costs, per line item."""
        price = self.price(model)
        if price is None:
            return []
        items: list[tuple[str, Decimal, str, Decimal]] = []
        if family in TOKEN_FAMILIES:
            cached = _quantity(usage, "cached_tokens")
            uncached = _quantity(usage, "input_tokens") - cached
            cached_price = price.input if price.cached_input is None else price.cached_input
            items += [
                ("input", uncached, "tokens", Decimal(str(price.input)) / MILLION),
                ("cached input", cached, "tokens", Decimal(str(cached_price)) / MILLION),
                ("output", _quantity(usage, "output_tokens"), "tokens", Decimal(str(price.output)) / MILLION),
            ]
        elif family == AUDIO_TRANSCRIPTIONS:
            items.append(("audio", _quantity(usage, "seconds") / 60, "duration_minutes", Decimal(str(price.audio_minute))))
        elif family == AUDIO_SPEECHES:
            items.append(("characters", _quantity(usage, "characters"), "characters", Decimal(str(price.characters)) / MILLION))
        elif family == IMAGES:  # OpenAI prices an image per image (of a size and quality: one price here)
            items.append(("images", _quantity(usage, "calls"), "images", Decimal(str(price.image))))
        elif family == FILE_SEARCH_CALLS:
            items.append(("calls", _quantity(usage, "calls"), "calls", Decimal(str(price.file_search_calls)) / 1000))
        elif family == VECTOR_STORES:
            # Each sample is an hour of the bytes it saw: GB-hours, priced per GB-day.
            gigabyte_hours = _quantity(usage, "bytes") / GIGABYTE
            items.append(("storage", gigabyte_hours, "gigabyte_hours", Decimal(str(price.vector_store_gb_day)) / 24))
        return [(f"{model}, {kind}", quantity, unit, quantity * each) for kind, quantity, unit, each in items if quantity and each]

    def micro_dollars(self, family: str, model: str, usage: Any) -> Decimal:
        """What ``usage`` costs, exactly, in millionths of a dollar (the spend counters' unit)."""
        return sum((usd for *_, usd in self.line_items(family, model, usage)), Decimal(0)) * MILLION
