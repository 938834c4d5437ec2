"""Tag ``Messages``: Anthropic's Messages API (``openapi/anthropic.yaml``), made the
service's chat request and answered through it (``serving/messages/``), or passed through
as the client sent it to an Anthropic upstream (its bytes, kept by the body validator);
its errors made Anthropic's by ``http/anthropic_errors.py``."""

import logging

from ..http.context import current, record, scope
from ..http.rendering import json_response, relay_response
from ..http.sse import status_stream
from ..serving.messages import service

log = logging.getLogger(__name__)


def _betas(beta: str | None) -> None:
    """The betas the client asked for (``?beta=``, ``anthropic-beta``): accepted whatever
    they are, and recorded (the log's ``anthropic_beta`` field, beside the API version it
    named) for the operator to see."""
    headers = dict(scope()["headers"])
    betas = [name.strip() for name in headers.get(b"anthropic-beta", b"").decode("latin-1").split(",") if name.strip()]
    if betas or beta is not None:
        version = headers.get(b"anthropic-version", b"").decode("latin-1") or None
        log.info("anthropic betas", extra={"anthropic_beta": betas, "beta": beta, "anthropic_version": version})


def _counted(usage: dict) -> None:
    """An upstream answer's chat usage into the one count (a local engine counts its own)."""
    services, request = current(), record()
    if request.tokens_counted or not services.settings.metrics_enabled or request.model is None:
        return
    request.tokens_counted = True
    services.metrics.count_tokens(request.model, usage)


def _metered(usage: dict) -> None:
    """A piece of an Anthropic upstream's answer's usage (its input, then its output: each
    only what it adds, ``passthrough.py``) into the same count; no other reader counts it."""
    services, request = current(), record()
    if not services.settings.metrics_enabled or request.model is None:
        return
    request.tokens_counted = True
    services.metrics.count_tokens(request.model, usage)


def _raw() -> tuple[bytes | None, bytes]:
    """The bytes this request's body was parsed from (kept by its body validator; none for a
    batch line), and its query string: a body passed on as it came."""
    return record().raw_body, scope().get("query_string", b"")


def _rendered(answer):
    if isinstance(answer, dict):
        return json_response(answer)
    return status_stream(answer)


async def messages_create(body: dict, beta: str | None = None, **_):
    _betas(beta)
    relayed = await service.passed(current(), "messagesCreate", body, _metered, *_raw())
    if relayed is not None:
        return relay_response(relayed)
    return _rendered(await service.create(current(), body, _counted))


async def messages_count_tokens(body: dict, beta: str | None = None, **_):
    _betas(beta)
    relayed = await service.passed(current(), "messagesCountTokens", body, _metered, *_raw())
    if relayed is not None:
        return relay_response(relayed)
    return json_response(await service.count_tokens(current(), body, _counted))
