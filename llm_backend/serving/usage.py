"""OpenAI's usage operations (``/v1/organization/usage/*``) over our usage accounting
(storage/usage.py): time buckets, ``group_by``, ``limit`` and ``page`` as OpenAI shapes them.

Completions, embeddings, moderations, audio speeches (characters) and transcriptions
(seconds), file_search calls, vector stores (bytes kept, sampled hourly) and the images of forwarded
image operations are answered from what was recorded - per key (``api_key_id``: ``alice``, ``key-5d3c…``, ``apikey_...``, never
the key itself), project (``project_id``) and model; fields this service has no notion of
(``user_id``, ``batch``, ``service_tier``, ``vector_store_id``) are null. What is never counted
here (code interpreter, web search) comes back as empty buckets, in the same shape,
so dashboards built on OpenAI's API still work. ``/organization/costs`` shares the buckets
and pages (serving/admin/costs.py).
Buckets are aligned to Unix-time multiples of their width (whole UTC minutes, hours, days)
and clipped to ``[start_time, end_time)``; every bucket of the range is listed, empty or not.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors
from ..storage.usage import UsageTotals
from .usage_families import FAMILIES

if TYPE_CHECKING:
    from .services import Services

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
# bucket_width -> (default limit, max limit), as the spec documents them.
LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
GROUPABLE = ("project_id", "api_key_id", "model")

LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z


def _page_token(start: int) -> str:
    return "page_" + base64.urlsafe_b64encode(str(start).encode()).decode()


def _page_start(page: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(page.removeprefix("page_").encode()).decode())
    except ValueError:
        raise errors.bad_request(f"Invalid page: '{page}'.", param="page", code="invalid_value") from None


def _result(operation: str, totals: UsageTotals) -> dict:
    family = FAMILIES[operation]  # what the family's result says (usage_families.py)
    result: dict = {"object": family.result_object, **family.result(totals)}
    for field in family.result_fields:
        result[field] = totals.group.get(field)
    return result


@dataclass
class Buckets:
    """The buckets of one page: their starts, the time span the page reads, and the next page."""

    width: int
    end: int
    starts: list[int]
    first: int
    page_end: int
    has_more: bool

    def page(self, results: dict[int, list[dict]]) -> dict:
        """OpenAI's page of these buckets, ``results`` by aligned bucket start."""
        data = [
            {
                "object": "bucket",
                "start_time": start,
                "end_time": min(self.end, start // self.width * self.width + self.width),
                "results": results.get(start // self.width * self.width, []),
            }
            for start in self.starts
        ]
        return {"object": "page", "data": data, "has_more": self.has_more, "next_page": _page_token(self.page_end) if self.has_more else None}


def buckets(
    start_time: int, end_time: int | None, bucket_width: str, limit: int | None, page: str | None, limits: dict = LIMITS
) -> Buckets:
    """The page's buckets, its parameters checked as OpenAI's (``limits``: default and
    largest ``limit`` per ``bucket_width``)."""
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        # Unix seconds up to the year 9999: the database's integers hold them (a fuzzer's
        # -10^26 would overflow the query, a 500 before this check).
        if value is not None and not 0 <= value <= LATEST_TIME:
            raise errors.bad_request(
                f"Invalid {name}: {value}; it must be a Unix time in seconds.", param=name, code="invalid_value"
            )
    if bucket_width not in limits:
        raise errors.bad_request(f"Invalid bucket_width: '{bucket_width}'.", param="bucket_width", code="invalid_value")
    width = WIDTHS[bucket_width]
    default_limit, max_limit = limits[bucket_width]
    limit = default_limit if limit is None else limit
    if not 1 <= limit <= max_limit:
        raise errors.bad_request(
            f"Invalid limit: {limit}; with bucket_width={bucket_width} it must be between 1 and {max_limit}.",
            param="limit",
            code="invalid_value",
        )
    end = int(time.time()) + 1 if end_time is None else end_time
    first = start_time if page is None else max(start_time, _page_start(page))
    starts: list[int] = []
    bucket = first
    while bucket < end and len(starts) <= limit:
        starts.append(bucket)
        bucket = (bucket // width + 1) * width
    has_more = len(starts) > limit
    starts = starts[:limit]
    page_end = min(end, (starts[-1] // width + 1) * width) if starts else first
    return Buckets(width, end, starts, first, page_end, has_more)


async def usage_page(
    services: Services,
    operation: str | None,
    start_time: int,
    end_time: int | None = None,
    bucket_width: str = "1d",
    group_by: list[str] | None = None,
    api_key_ids: list[str] | None = None,
    models: list[str] | None = None,
    limit: int | None = None,
    page: str | None = None,
    project_ids: list[str] | None = None,
    user_ids: list[str] | None = None,
    batch: bool | None = None,
) -> dict:
    """One page of ``operation``'s usage buckets (``operation`` None: one of the usage kinds
    this service does not count: every bucket empty). No usage here belongs to a user, or
    is told apart as a batch's: asking for those filters selects nothing (they were once
    accepted and ignored, which answered every key's usage)."""
    if user_ids or batch:
        operation = None
    shown = buckets(start_time, end_time, bucket_width, limit, page)
    by_bucket: dict[int, list[dict]] = {}
    if operation is not None and shown.starts:
        grouped = tuple(field for field in GROUPABLE if field in (group_by or ()))
        totals = await services.database.usage.totals_now(
            shown.first, shown.page_end, operation=operation, width=shown.width, group_by=grouped,
            owners=api_key_ids, models=models, projects=project_ids,
        )
        for item in totals:
            by_bucket.setdefault(item.start, []).append(_result(operation, item))
    return shown.page(by_bucket)
