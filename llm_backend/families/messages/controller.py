"""The controllers of both tags of Anthropic's document (``openapi/anthropic.yaml``), routed
here by the family's registration (``Family.controllers``):

- ``Messages``: a request made the service's chat request and answered through it
  (``serving/service.py``), or passed through as the client sent it to an Anthropic upstream
  (its bytes, kept by the body validator);
- ``Message Batches``: batches of ``POST /v1/messages`` requests on the batch runner
  (``serving/batches.py``).

Their errors are made Anthropic's by ``middleware.py``."""

import logging

from llm_backend.http.context import caller, current, current_owner, record, scope
from llm_backend.http.rendering import bytes_stream, json_response, relay_response
from llm_backend.http.sse import status_stream

from .serving import batches, service

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
    if request.tokens_counted or not services.settings.metrics_enabled or request.model is None or services.metrics is None:
        return
    request.tokens_counted = True
    services.metrics.count_tokens(request.model, usage)


def _metered(usage: dict) -> None:
    """A piece of an Anthropic upstream's answer's usage (its input, then its output: each
    only what it adds, ``serving/passthrough.py``) into the same count; no other reader counts it."""
    services, request = current(), record()
    if not services.settings.metrics_enabled or request.model is None or services.metrics is None:
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


def _origin() -> str:
    """The service's origin as the client reached it: a ``results_url`` is absolute."""
    request = scope()
    host = next((value.decode("latin-1") for name, value in request["headers"] if name == b"host"), None)
    if host is None:
        address, port = request.get("server") or ("localhost", 80)
        host = f"{address}:{port}"
    return f"{request.get('scheme', 'http')}://{host}"


# --- Messages ------------------------------------------------------------------------------


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


# --- Message Batches -------------------------------------------------------------------------


async def message_batches_create(body: dict, **_):
    return json_response(await batches.create(current(), current_owner(), caller().key, body, _origin()))


async def message_batches_retrieve(message_batch_id: str, **_):
    return json_response(await batches.retrieve(current(), current_owner(), message_batch_id, _origin()))


async def message_batches_list(before_id: str | None = None, after_id: str | None = None, limit: int = 20, **_):
    return json_response(await batches.list_page(current(), current_owner(), before_id, after_id, limit, _origin()))


async def message_batches_cancel(message_batch_id: str, **_):
    return json_response(await batches.cancel(current(), current_owner(), message_batch_id, _origin()))


async def message_batches_delete(message_batch_id: str, **_):
    return json_response(await batches.delete(current(), current_owner(), message_batch_id))


async def message_batches_results(message_batch_id: str, **_):
    return bytes_stream(await batches.results(current(), current_owner(), message_batch_id), "application/x-jsonl")
