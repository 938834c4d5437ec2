"""Tag ``Message Batches``: Anthropic's Message Batches (``openapi/anthropic.yaml``), batches
of ``POST /v1/messages`` requests on the batch runner (``serving/messages/batches.py``);
their errors made Anthropic's by ``http/anthropic_errors.py``."""

from ..http.context import caller, current, current_owner, scope
from ..http.rendering import bytes_stream, json_response
from ..serving.messages import batches


def _origin() -> str:
    """The service's origin as the client reached it: a ``results_url`` is absolute."""
    request = scope()
    host = next((value.decode("latin-1") for name, value in request["headers"] if name == b"host"), None)
    if host is None:
        address, port = request.get("server") or ("localhost", 80)
        host = f"{address}:{port}"
    return f"{request.get('scheme', 'http')}://{host}"


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
