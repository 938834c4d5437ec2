"""The catalogue of errors the service answers with, in OpenAI's shape (rank -1).

``{"error": {"message": str, "type": str, "param": str | None, "code": str | None}}`` with
the status OpenAI uses. Every named error is built here, a factory in its kind's module, never
beside its caller, and every name is importable from the package (``from ..errors import
not_found``, ``errors.not_found``). Nothing here knows the web framework, so backends and
storage can raise them; ``http/problems.py`` renders them through the one renderer
(``http/rendering.py``'s ``error_response``) and translates the framework's own problems
into them.

- ``error.py``: ``OpenAIError`` (its type follows its status), ``bad_request`` and
  ``server_error`` (what every other error falls back on), ``answered`` (what a request raised,
  logged, and the error to answer: only server failures at error level);
- ``request.py``: the body (unparsable, too deep, too many values, a key twice, too large, too
  slow, text no database holds), the URL and method, the size limits OpenAI states;
- ``parameters.py``: one parameter missing, mistyped, unknown, or not honoured here (a local
  model, predicted outputs, a hosted tool of OpenAI's cloud): refused by name, never ignored;
- ``images.py``: one image of a chat request: its format, bytes, pixels, data URL or
  download, and a request's images counted;
- ``access.py``: keys and their rights, origins and hosts, per-key rate limits, limits that
  cannot be counted, hard spend limits (``insufficient_quota``);
- ``models.py``: a model unknown, unfit for the operation, loading, full, out of room for the
  request, or its engine stopped;
- ``objects.py``: ids that name nothing (of the caller's: the same answer), states that refuse
  the operation;
- ``upstream.py``: upstream APIs and MCP listings failing, naming the upstream, never its key
  or its URL's secrets;
- ``sockets.py``: the WebSocket modes' errors, sent as ``error`` events.

The control plane's own errors are ``serving/admin/errors.py``'s; a family in a folder keeps
its own in its ``errors.py`` (``families/messages/errors.py``: Anthropic's shape and its
lane's errors), built on these.
"""

from __future__ import annotations

# Re-exported: the package is the catalogue, whichever module a name lives in.
from .error import OpenAIError, bad_request, server_error, answered, named_as
from .request import (
    invalid_json, too_deep, too_many_values, duplicate_key, invalid_body, unreadable_body, request_too_large,
    request_timeout, unknown_url, method_not_allowed, not_served, array_above_max_length, max_tokens_per_request,
    file_too_large, unstorable,
)
from .parameters import (
    missing_required_parameter, invalid_type, invalid_value, unknown_parameter, unrecognized_arguments,
    unsupported_parameter, unsupported_value, not_supported_locally, not_supported_by_model,
    not_with_prediction, value_not_with_prediction, hosted_tool_forced,
)
from .images import (
    unsupported_image, unparsable_image, image_bytes_too_large, image_too_large, images_too_large, too_many_images,
    invalid_image_data_url, image_download_failed, image_urls_off,
)
from .access import (
    missing_key, invalid_key, not_admin, forbidden, cross_site_websocket, cross_site_request, foreign_host,
    rate_limited, limits_unavailable, insufficient_quota, spend_not_held,
)
from .models import (
    model_not_found, model_not_supported, chat_model_only, guard_gave_no_verdict, model_loading,
    context_length_exceeded, max_tokens_too_large, max_tokens_beyond_ceiling, queue_full, worker_crashed, worker_out_of_memory,
    model_load_failed,
)
from .objects import (
    not_found, missing, no_such, missing_object, vector_store_expired, chat_completion_not_found,
    response_not_found, conversation_not_found, batch_not_found, batch_not_cancellable,
    vector_store_not_found, file_not_found, vector_store_file_not_found, file_batch_not_found, upload_refused,
)
from .upstream import (
    no_deployment, upstream_unreachable, upstream_broke_off, upstream_timeout, upstream_unreadable,
    upstream_refused, upstream_broken_off, upstream_error, mcp_listing_failed,
)
from .sockets import (
    invalid_client_event, event_too_large, connection_limit_reached, stream_queue_full, too_many_sessions,
    session_expired,
)
