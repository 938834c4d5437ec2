"""Errors of the request itself, before any model is asked: its body (unparsable, too
deep, a key twice in an object, too large, too slow, values no database can hold), its URL and method, and the
size limits OpenAI states (array lengths, tokens per request).
"""

from __future__ import annotations

from .error import OpenAIError, bad_request


def invalid_json() -> OpenAIError:
    return bad_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
    )


def too_deep(limit: int) -> OpenAIError:
    return bad_request(f"The request body nests arrays and objects more than {limit} levels deep.", code="invalid_body")


def too_many_values(limit: int) -> OpenAIError:
    return bad_request(
        f"The request body holds more than {limit} JSON values and keys (strings, numbers, arrays, objects, "
        "object keys): it is refused before it is read further.",
        code="invalid_body",
    )


SHOWN = 200  # characters of a key's path shown (a key may be megabytes)


def duplicate_key(param: str) -> OpenAIError:
    # One parse for every reader (issue #56): a body relayed byte for byte must mean to the
    # upstream's parser what it meant here, and parsers differ on a repeated key (the last,
    # the first, or an error): so an object holding a key twice is refused on every lane.
    shown = param if len(param) <= SHOWN else param[:SHOWN] + "..."
    return bad_request(
        f"The key '{shown}' appears more than once in its object: each key of a JSON object may appear once "
        "in a request.",
        shown,
        "duplicate_key",
    )


def invalid_body() -> OpenAIError:
    return bad_request(
        "The request body must be a JSON object, sent with 'Content-Type: application/json'.", code="invalid_body"
    )


def unreadable_body(why: str) -> OpenAIError:
    # A tenant's forwarded request is checked for the ids it names; what cannot be read
    # cannot be checked, so it is refused (issue #33: closed when unsure).
    return bad_request(f"The request body could not be read: {why}.", code="invalid_body")


def request_too_large(limit: int) -> OpenAIError:
    return OpenAIError(413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large")


def request_timeout(seconds: float, min_rate: int) -> OpenAIError:
    return OpenAIError(
        408,
        f"The request body did not arrive in time: it must come within {seconds:g} seconds plus one second per "
        f"{min_rate} bytes.",
        code="request_timeout",
    )


def unknown_url() -> OpenAIError:
    return OpenAIError(404, "Unknown request URL. Please check the URL and method.", code="unknown_url")


def method_not_allowed() -> OpenAIError:
    return OpenAIError(405, "Method not allowed for this URL. Please check the URL and method.", code="method_not_allowed")


def not_served(operation_id: str, method: str, path: str) -> OpenAIError:
    # OpenAI's answer for a URL it does not serve: a 404, which the SDKs do not retry (they
    # retry a 501 twice, with back-off, before the caller sees it).
    return OpenAIError(
        404,
        f"Unknown request URL: {method} {path}. This server does not serve the operation '{operation_id}'.",
        code="unknown_url",
    )


def array_above_max_length(param: str, limit: int, length: int) -> OpenAIError:
    return bad_request(
        f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {length} instead.",
        param,
        "array_above_max_length",
    )


def max_tokens_per_request(requested: int, limit: int, param: str = "input") -> OpenAIError:
    """OpenAI's answer to an embeddings request over its tokens summed across inputs
    (its ``type`` and ``code`` are ``max_tokens_per_request``; its ``param`` is named here)."""
    return OpenAIError(
        400,
        f"Requested {requested} tokens, max {limit} tokens per request",
        param=param,
        code="max_tokens_per_request",
        type="max_tokens_per_request",
    )


def file_too_large(limit: int, size: int, param: str = "file") -> OpenAIError:
    # An uploaded file (an audio file) over its limit: OpenAI's 413, in its words.
    return OpenAIError(
        413, f"Maximum content size limit ({limit}) exceeded ({size} bytes read)", param=param, code="request_too_large"
    )


def unstorable(why: str, param: str | None, text: str = "", limit: int | None = None) -> OpenAIError:
    """OpenAI's 400 for a value no database here can hold (``storage/storable.py``: ``why``
    is ``long``, ``nul`` or ``surrogate``)."""
    name = f"'{param}'" if param else "value"
    if why == "long":
        return bad_request(
            f"Invalid {name}: string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(text)} instead.",
            param,
            "string_above_max_length",
        )
    what = "NUL characters" if why == "nul" else "unpaired surrogates (not valid Unicode)"
    return bad_request(f"Invalid {name}: text cannot contain {what}.", param, "invalid_value")
