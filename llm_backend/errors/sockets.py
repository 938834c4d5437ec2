"""Errors of the WebSocket modes (the Responses mode, Realtime sessions): a frame that is no
client event, or too large a one, and the limits of a connection (its duration, its lanes'
queues, the sessions open at once). Sent as ``error`` events; the connection mostly stays.
"""

from __future__ import annotations

from .error import OpenAIError, bad_request


def invalid_client_event() -> OpenAIError:
    # The Responses WebSocket mode: each text frame is one client event.
    return bad_request(
        "Each WebSocket message must be a JSON object: a client event such as 'response.create'.",
        code="invalid_event",
    )


def event_too_large(max_values: int) -> OpenAIError:
    return bad_request(
        f"A client event may hold at most {max_values} JSON values and keys (realtime_event_values).", None, "event_too_large"
    )


def connection_limit_reached(seconds: float) -> OpenAIError:
    # The Responses WebSocket mode: a connection lasts at most ``seconds`` (OpenAI's: 60 minutes).
    return bad_request(
        f"Responses websocket connection limit reached ({seconds / 60:g} minutes). Create a new websocket "
        "connection to continue.",
        code="websocket_connection_limit_reached",
    )


def stream_queue_full(stream_id: str | None, size: int) -> OpenAIError:
    # The Responses WebSocket mode: one lane holds ``size`` events behind its current response.
    lane = "this connection" if stream_id is None else f"stream '{stream_id}'"
    return OpenAIError(
        429,
        f"Too many 'response.create' events are waiting on {lane} (at most {size} behind the one "
        "being answered). Wait for a response to finish before sending more.",
        param="stream_id",
        code="websocket_stream_queue_full",
    )


def too_many_sessions(holder: str, limit: int) -> OpenAIError:
    """Realtime sessions open at once past the limit of their ``holder`` (``key`` or ``secret``)."""
    return OpenAIError(
        429,
        f"Too many Realtime sessions are open for this {'API key' if holder == 'key' else 'client secret'}: "
        f"at most {limit} at once (realtime_sessions_per_{holder}). Close one first.",
        code="rate_limit_exceeded",
    )


def session_expired(seconds: float) -> OpenAIError:
    return OpenAIError(400, f"Your session hit the maximum duration of {seconds:g} seconds.", code="session_expired")
