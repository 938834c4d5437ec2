"""Errors naming one parameter of a request: missing, of the wrong type, unknown, or known
but not honoured here (a local model, an audio model, predicted outputs, a hosted tool of
OpenAI's cloud). Refused by name rather than ignored: a client learns what was not done.
"""

from __future__ import annotations

from .error import OpenAIError, bad_request


def missing_required_parameter(param: str) -> OpenAIError:
    return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def invalid_type(param: str | None, why: str) -> OpenAIError:
    return bad_request(f"Invalid type for '{param}': {why}.", param, "invalid_type")


def invalid_value(param: str | None, why: str) -> OpenAIError:
    """A value its schema refuses (no ``param``: the request body's)."""
    where = f"'{param}'" if param else "the request body"
    return bad_request(f"Invalid value for {where}: {why}.", param, "invalid_value")


def unknown_parameter(param: str) -> OpenAIError:
    return bad_request(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def unrecognized_arguments(names: list[str]) -> OpenAIError:
    # The legacy operations' words for unknown top-level fields (no param, no code).
    plural = "s" if len(names) > 1 else ""
    return bad_request(f"Unrecognized request argument{plural} supplied: {', '.join(names)}")


def unsupported_parameter(param: str, message: str) -> OpenAIError:
    return bad_request(message, param, "unsupported_parameter")


def unsupported_value(param: str, why: str) -> OpenAIError:
    return bad_request(f"Unsupported value for '{param}': {why}.", param, "unsupported_value")


def not_supported_locally(param: str, why: str) -> OpenAIError:
    """A parameter local models cannot honour (chat completions' and Responses' alike)."""
    return bad_request(f"'{param}' is not supported by local models: {why}.", param, "unsupported_parameter")


def not_supported_by_model(param: str, model_id: str) -> OpenAIError:
    # Parameters of the audio documents that only OpenAI's newer models honour.
    return bad_request(
        f"Unsupported parameter: '{param}' is not supported with the model `{model_id}`.", param, "unsupported_parameter"
    )


def not_with_prediction(param: str) -> OpenAIError:
    return bad_request(f"Unsupported parameter: '{param}' is not supported with predicted outputs.", param, "unsupported_parameter")


def value_not_with_prediction(param: str, value: object, supported: str) -> OpenAIError:
    return bad_request(
        f"Unsupported value: '{param}' does not support {value} with predicted outputs. Supported values are: {supported}.",
        param,
        "unsupported_value",
    )


def hosted_tool_forced(kind: str, needs: str, param: str) -> OpenAIError:
    # A tool_choice forcing a tool that only OpenAI's cloud runs (``needs``: what it needs there).
    return bad_request(
        f"'tool_choice' forces the '{kind}' tool, which needs {needs} in OpenAI's cloud: local models cannot call it.",
        param,
        "unsupported_parameter",
    )
