"""The Batch operations' rules: create (checked as OpenAI checks the request; the input
file itself is checked by the runner, as OpenAI does, while the batch is ``validating``),
retrieve, cancel, list. Every batch is its creator's: another key gets 404."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import bad_request, batch_not_cancellable
from ...errors import batch_not_found as _not_found
from ...json.types import Json
from ...storage.batches import CannotCancel
from ..metadata import check_metadata
from ..lists import check_limit, list_object

if TYPE_CHECKING:
    from ..services import Services
    from .runner import BatchRunner

WINDOWS = {"24h": 24 * 3600}


def _runner(services: Services) -> BatchRunner:
    return services.batches


def _supported(endpoints: frozenset[str]) -> str:
    quoted = [f"'{endpoint}'" for endpoint in sorted(endpoints)]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)


async def create(services: Services, owner: str, body: Json, creator: str | None = None) -> Json:
    """A new batch of ``owner``'s, made by the key ``creator`` (``Principal.key``): its lines
    run only while that key is valid (``runner.py``)."""
    endpoint = body["endpoint"]
    runner = _runner(services)
    if endpoint not in runner.lines.endpoints:
        raise bad_request(
            f"Invalid value: '{endpoint}'. Supported values are: {_supported(runner.lines.endpoints)}.",
            "endpoint",
            "invalid_value",
        )
    metadata = check_metadata(body.get("metadata")) if body.get("metadata") is not None else None
    window = body["completion_window"]
    created = await services.database.run(
        services.database.batches.create,
        owner,
        endpoint,
        body["input_file_id"],
        window,
        WINDOWS[window],
        metadata,
        body.get("output_expires_after"),
        creator,
    )
    runner.wake()
    return created


async def retrieve(services: Services, owner: str, batch_id: str) -> Json:
    found = await services.database.run(services.database.batches.get, owner, batch_id)
    if found is None:
        raise _not_found(batch_id)
    return found


async def cancel(services: Services, owner: str, batch_id: str) -> Json:
    try:
        cancelled = await services.database.run(services.database.batches.cancel, owner, batch_id)
    except CannotCancel as ended:
        raise batch_not_cancellable(ended.status) from None
    if cancelled is None:
        raise _not_found(batch_id)
    _runner(services).wake()
    return cancelled


async def list_page(services: Services, owner: str, after: str | None, limit: int) -> Json:
    try:
        data, has_more = await services.database.run(services.database.batches.list, owner, after, check_limit(limit))
    except LookupError:
        raise _not_found(after or "", "after") from None
    return list_object(data, has_more)
