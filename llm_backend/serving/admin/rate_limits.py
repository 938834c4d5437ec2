"""A project's per-model rate limits (``/organization/projects/{id}/rate_limits``), enforced
by ``http/project_limits.py`` on every replica.

The list shows one ``project.rate_limit`` per local model and per model the project has
limits on, ``rl-<model>`` (OpenAI's ids); any model this service routes can be limited, an
alias or a persona as the model it names (``ModelRegistry.canonical``: set on
``rl-smol-alias``, the limits are ``rl-smollm2``'s, the ones its requests count in). OpenAI
always shows a value: a limit not set shows as ``UNSET`` (2147483647, the largest the
document's integers hold); setting a limit to that value removes it. Below 1 is refused.

A limit is stored only where it is held: one this service cannot count is refused with a 400
naming it, never stored and ignored (issue #47). Requests and tokens are counted on every
lane that names a model, audio megabytes on every audio upload; images only where image
operations are forwarded (a default upstream: ``http/forwarded_usage.py``), and batch input
tokens only where batches run here (a pure gateway forwards the Batch API: its lines are the
upstream's to count).
"""

from __future__ import annotations

from ... import errors
from ...auth import Principal
from ...json.types import Json
from ...storage.admin_snapshot import LIMIT_NAMES, ModelLimits
from ..services import Services
from . import objects
from .audit import entry
from .projects import project_of

UNSET = 2**31 - 1
PREFIX = "rl-"
MAX_LIST = 100


def _shown(model: str, limits: ModelLimits | None) -> Json:
    limits = limits or ModelLimits()
    values = {name: getattr(limits, name) for name in LIMIT_NAMES}
    return {
        "object": "project.rate_limit",
        "id": PREFIX + model,
        "model": model,
        **{name: UNSET if value is None else value for name, value in values.items()},
    }


async def _models(services: Services, project_id: str) -> dict[str, ModelLimits | None]:
    database = services.database
    configured = await database.run(database.project_limits.of, project_id)
    registry = services.registry
    local = {card.id: None for card in registry.local_models() if registry.canonical(card.id) == card.id}  # not aliases
    return dict(sorted({**local, **configured}.items()))


async def list_limits(
    services: Services, project_id: str, limit: int = MAX_LIST, after: str | None = None, before: str | None = None
) -> Json:
    await project_of(services, project_id)
    if not 1 <= limit <= MAX_LIST:
        raise errors.bad_request(
            f"Invalid 'limit': integer out of range. Expected a value between 1 and {MAX_LIST}, but got {limit} instead.",
            "limit", "integer_out_of_range",
        )
    shown = [_shown(model, limits) for model, limits in (await _models(services, project_id)).items()]
    ids = [item["id"] for item in shown]
    for cursor, name in ((after, "after"), (before, "before")):
        if cursor is not None and cursor not in ids:
            raise errors.not_found("rate limit", cursor, name)
    if after is not None:
        shown = shown[ids.index(after) + 1 :]
    if before is not None:
        remaining = [item["id"] for item in shown]
        shown = shown[: remaining.index(before)] if before in remaining else []
        return objects.page(shown[-limit:], len(shown) > limit)
    return objects.page(shown[:limit], len(shown) > limit)


def _uncountable(services: Services, name: str) -> str | None:
    """Why this service cannot count ``name`` (None: it can, on every lane it applies to)."""
    upstream = services.registry.default_upstream
    if name == "max_images_per_1_minute" and upstream is None:
        return "image operations are not served here and there is no upstream to forward them to"
    if name == "batch_1_day_max_input_tokens" and upstream is not None and not services.settings.local_models:
        return "batches are forwarded to the upstream (a gateway without local models), which runs their lines"
    return None


async def update_limits(services: Services, caller: Principal, project_id: str, rate_limit_id: str, body: Json) -> Json:
    project = await project_of(services, project_id)
    model = rate_limit_id.removeprefix(PREFIX)
    if not rate_limit_id.startswith(PREFIX) or not model or services.registry.backend_for_or_none(model) is None:
        raise errors.not_found("rate limit", rate_limit_id, "rate_limit_id")
    model = services.registry.canonical(model)  # an alias's limits are its model's (http/project_limits.py)
    changes: dict[str, int | None] = {}
    for name in LIMIT_NAMES:
        value = body.get(name)
        if value is None:
            continue
        if value < 1 or value > UNSET:
            raise errors.bad_request(
                f"Invalid '{name}': {value}. A limit is at least 1; {UNSET} removes it.", name, "invalid_value"
            )
        changes[name] = None if value == UNSET else value
        if value != UNSET and (why := _uncountable(services, name)) is not None:
            raise errors.bad_request(f"'{name}' cannot be enforced by this service: {why}.", name, "unsupported_parameter")
    if not changes:
        limits = (await _models(services, project_id)).get(model)
        return _shown(model, limits)
    audit = entry(caller, "rate_limit.updated", {"changes_requested": {n: UNSET if v is None else v for n, v in changes.items()}},
                  project=project, resource_id=rate_limit_id)
    database = services.database
    return _shown(model, await database.run(database.project_limits.set, project_id, model, changes, audit))
