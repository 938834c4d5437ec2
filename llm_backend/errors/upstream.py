"""Errors of the APIs this service relays to: an upstream API (unreachable, broken off, too
slow, unreadable, or its own error answered) and a remote MCP server whose tools could not
be listed. They name the upstream, never its URL's secrets or its key.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .error import OpenAIError, bad_request


def no_deployment(model_id: str) -> OpenAIError:
    return OpenAIError(
        503,
        f"No deployment of model '{model_id}' is available right now. Please retry shortly.",
        code="no_deployment_available",
        type="server_error",
        headers={"retry-after": "1"},
    )


def upstream_unreachable(upstream: str) -> OpenAIError:
    # Names the upstream, never its URL or key: the message reaches clients and logs.
    return OpenAIError(
        502,
        f"The upstream API '{upstream}' could not be reached. Please retry shortly.",
        code="upstream_unreachable",
        type="server_error",
    )


def upstream_broke_off(upstream: str) -> OpenAIError:
    return OpenAIError(502, f"The upstream API '{upstream}' broke off the answer.", code="upstream_unreachable")


def upstream_timeout(upstream: str, seconds: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"The upstream API '{upstream}' did not answer within {seconds:g} seconds.",
        code="upstream_timeout",
        type="server_error",
    )


def upstream_unreadable() -> OpenAIError:
    # An answer the tenant guard must read (a list to filter, objects to record) that it
    # cannot: refused rather than passed on unread.
    return OpenAIError(
        502, "The upstream API's answer could not be read, so it was not passed on.", code="upstream_unreadable", type="server_error"
    )


def upstream_refused(status: int, what: str) -> OpenAIError:
    return OpenAIError(status, f"The upstream API refused the {what}.")


def upstream_broken_off(upstream: str, timeout: float, exc: BaseException) -> OpenAIError:
    """What an upstream's answer that stopped (``exc``: a timeout, or the connection lost) is."""
    if isinstance(exc, asyncio.TimeoutError):
        return upstream_timeout(upstream, timeout)
    return upstream_broke_off(upstream)


def upstream_error(status: int, body: bytes, upstream: str) -> OpenAIError:
    """The upstream's error answer (OpenAI's shape, or whatever it sent) as our error."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    return upstream_error_of(status, error, upstream)


def upstream_error_of(status: int, error: Any, upstream: str) -> OpenAIError:
    """An upstream's error object (its ``message``, ``param``, ``code``, ``type``; or a
    message alone) as our error, read already (``upstream_error`` reads an answer's)."""
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        error = {}
    message = error.get("message") or f"The upstream API '{upstream}' refused the chat completion."
    return OpenAIError(
        status if status >= 400 else 502,
        str(message),
        param=error.get("param") if isinstance(error.get("param"), str) else None,
        code=error.get("code") if isinstance(error.get("code"), str) else None,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
    )


def mcp_listing_failed(label: str, url: str, param: str, error: dict[str, Any], refused: bool) -> OpenAIError:
    """The error of an MCP server that could not be listed (``url`` as it may be shown): a
    refused address is a 400 naming its URL, anything else OpenAI's 424
    ``external_connector_error``."""
    if refused:
        return bad_request(f"The MCP server cannot be used: {error['message']}", f"{param}.server_url", "invalid_value")
    detail = f"Http status code: {error['code']}" if error["type"] == "http_error" else error.get("message", "")
    return OpenAIError(
        424,
        f"Error retrieving tool list from MCP server: '{label}' ({url}). {detail}",
        param=param,
        code=error["type"],
        type="external_connector_error",
    )
