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

from ...settings.admin import Price
from ..usage_families import FAMILIES, MILLION

# The model names the hosted tools' usage is recorded and priced under.
FILE_SEARCH, VECTOR_STORE_STORAGE = "file_search", "vector_stores"
LineItem = tuple[str, Decimal, str, Decimal]  # (line item, quantity, unit, USD)


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
        row = FAMILIES.get(family)  # each family's line items (usage_families.py)
        items = row.line_items(price, usage) if row is not None else []
        return [(f"{model}, {kind}", quantity, unit, quantity * each) for kind, quantity, unit, each in items if quantity and each]

    def micro_dollars(self, family: str, model: str, usage: Any) -> Decimal:
        """What ``usage`` costs, exactly, in millionths of a dollar (the spend counters' unit)."""
        return sum((usd for *_, usd in self.line_items(family, model, usage)), Decimal(0)) * MILLION
