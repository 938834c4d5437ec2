"""Errors of who is asking: no key, a wrong key, a key without the rights, a page of
another origin or a foreign Host name (``http/edge.py``), a key past its rate limits, rate
limits that cannot be counted, and a hard spend limit reached or a request that could pass
it (``serving/metering/meter.py``: OpenAI's 429 ``insufficient_quota``).
"""

from __future__ import annotations

from .error import OpenAIError


def missing_key() -> OpenAIError:
    return OpenAIError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def invalid_key() -> OpenAIError:
    return OpenAIError(
        401,
        "Incorrect API key provided. You can find your API key in your account settings.",
        code="invalid_api_key",
    )


def not_admin() -> OpenAIError:
    return OpenAIError(
        403,
        "You have insufficient permissions for this operation: it needs an admin key, and the API key "
        "provided is not one.",
        code="insufficient_permissions",
    )


def forbidden() -> OpenAIError:
    return OpenAIError(403, "You are not allowed to perform this request.", code="forbidden")


def cross_site_websocket(origin: str) -> OpenAIError:
    # A WebSocket handshake from a web page of another origin (http/edge.py).
    return OpenAIError(
        403, f"WebSocket connections from the origin '{origin[:200]}' are not allowed.", code="origin_not_allowed"
    )


def cross_site_request(origin: str) -> OpenAIError:
    # A keyless service written to by a web page of another site (http/edge.py).
    return OpenAIError(
        403,
        f"Requests from the origin '{origin[:200]}' may not change anything on this service: add it to "
        "cors_origins, or configure API keys.",
        code="origin_not_allowed",
    )


def foreign_host(host: str) -> OpenAIError:
    # A keyless service reached under a name that is not its own: DNS rebinding (http/edge.py).
    return OpenAIError(
        403,
        f"The host '{host[:200]}' is not allowed: reach this service as localhost or by its address, or add "
        "the name to allowed_hosts.",
        code="host_not_allowed",
    )


def rate_limited(kind: str, limit: int, used: int, wait: int, headers: dict[str, str], per: str = "min") -> OpenAIError:
    unit = ("R" if kind == "requests" else "T") + ("PD" if per == "day" else "PM")
    return OpenAIError(
        429,
        f"Rate limit reached for this key on {kind} per {per} ({unit}): Limit {limit}, Used {used}, "
        f"Requested 1. Please try again in {wait}s.",
        code="rate_limit_exceeded",
        type=kind,
        headers={"retry-after": str(wait), **headers},
    )


def limits_unavailable(retry_after: int) -> OpenAIError:
    # The key's rate limits cannot be counted (their storage, Redis, is down): refused rather
    # than let in uncounted, as a 503 the SDKs retry after ``retry-after`` (issue #56). Type
    # ``server_error`` as OpenAI's 5xx; Anthropic's clients get ``overloaded_error``
    # (families/messages/errors.py), the type its SDK and Claude Code retry. Nothing of the
    # storage (its address) is told.
    return OpenAIError(
        503,
        f"The rate limits of this key cannot be checked right now. Please try again in {retry_after}s.",
        code="service_unavailable",
        type="server_error",
        headers={"retry-after": str(retry_after)},
    )


def insufficient_quota(scope: str, limit_cents: int) -> OpenAIError:
    """A hard spend limit reached (OpenAI's 429 ``insufficient_quota``): until it is raised or
    its month ends."""
    return OpenAIError(
        429,
        f"You exceeded your current quota: the {scope}'s hard spend limit of ${limit_cents / 100:.2f} this month "
        "is reached. Raise the limit or wait for the next month.",
        code="insufficient_quota",
        type="insufficient_quota",
    )


# What a smaller request of each family would be (a family not named: the token caps).
_SMALLER = {"images": "Ask for fewer images (n)", "audio_speeches": "Send a shorter input"}


def spend_not_held(scope: str, limit_cents: int, most_micros: int, left_micros: int, family: str = "") -> OpenAIError:
    """A request that could cost more than what remains under a hard spend limit (its most is
    held before it is served: ``serving/metering/meter.py``): OpenAI's 429
    ``insufficient_quota``, saying what a smaller output cap would change."""
    return OpenAIError(
        429,
        f"You exceeded your current quota: this request may cost up to ${most_micros / 1e6:.6f}, and the {scope}'s "
        f"hard spend limit of ${limit_cents / 100:.2f} this month leaves ${max(left_micros, 0) / 1e6:.6f} not spent or "
        f"held by requests in progress. {_SMALLER.get(family, 'Set a lower max_completion_tokens / max_output_tokens')}, or raise the limit.",
        code="insufficient_quota",
        type="insufficient_quota",
    )
