"""``GET /v1/organization/costs``: the usage of every family, priced by the price table
(``serving/metering/prices.py``), in OpenAI's daily buckets, grouped by project, line item and key as asked.

Costs are the usage records priced with the table as it is when asked (change prices at a
month's start to keep months apart); a result is a group's amount in USD (``amount.value``,
rounded to micro-dollars), and with ``group_by=line_item`` one result per line item
(``<model>, input``, ``<model>, output``, ``whisper-1, audio``...) with its quantity and unit.
Nothing priced, nothing listed: a local model not in the table costs 0.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..services import Services, required
from ..usage import buckets

COST_LIMITS = {"1d": (7, 180)}  # OpenAI's costs: daily buckets, up to 180 a page
GROUPS = ("project_id", "line_item", "api_key_id")


async def costs_page(
    services: Services, start_time: int, end_time: int | None = None, bucket_width: str = "1d",
    project_ids: list[str] | None = None, api_key_ids: list[str] | None = None, group_by: list[str] | None = None,
    limit: int | None = None, page: str | None = None,
) -> dict[str, Any]:
    shown = buckets(start_time, end_time, bucket_width, limit, page, COST_LIMITS)
    grouped = [field for field in GROUPS if field in (group_by or ())]
    results: dict[int, list[dict]] = {}
    if shown.starts:
        database = services.database
        columns = ("operation", "model", *(field for field in grouped if field != "line_item"))
        totals = await database.usage.totals_now(
            shown.first, shown.page_end, width=shown.width, group_by=columns,
            owners=api_key_ids, projects=project_ids,
        )
        prices = required(services.spend_meter, "a spend meter").prices
        sums: dict[tuple[int, tuple], list[Decimal]] = {}  # (bucket, group) -> [usd, quantity]
        units: dict[tuple[int, tuple], str] = {}
        for row in totals:
            items = prices.line_items(row.group["operation"], row.group["model"], row)
            for line_item, quantity, unit, usd in items:
                group = tuple(line_item if field == "line_item" else row.group[field] for field in grouped)
                total = sums.setdefault((row.start, group), [Decimal(0), Decimal(0)])
                total[0] += usd
                total[1] += quantity
                units[(row.start, group)] = unit
        for (start, group), (usd, quantity) in sorted(sums.items(), key=lambda item: (item[0][0], [str(v) for v in item[0][1]])):
            values = dict(zip(grouped, group))
            result = {
                "object": "organization.costs.result",
                "amount": {"value": float(round(usd, 6)), "currency": "usd"},
                "line_item": values.get("line_item"),
                "project_id": values.get("project_id"),
                "api_key_id": values.get("api_key_id"),
                "quantity": float(quantity) if "line_item" in values else None,
                "quantity_unit": units[(start, group)] if "line_item" in values else None,
            }
            results.setdefault(start, []).append(result)
    return shown.page(results)

