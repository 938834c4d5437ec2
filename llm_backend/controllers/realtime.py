"""Tag ``Realtime``: ephemeral client secrets for ``/v1/realtime`` (the sessions themselves
are WebSockets: ``http/realtime_socket.py``). Calls and SIP (WebRTC) are not served."""

import time

from ..auth import digest
from ..http import context
from ..http.context import current
from ..http.rendering import json_response
from ..serving.admin import hosted_tools

DEFAULT_SECONDS = 600


async def _nowhere(event: dict) -> None:
    """A previewed session sends nothing."""


async def create_realtime_client_secret(body: dict):
    from ..serving.realtime.events import checked_config_size
    from ..serving.realtime.threads import off_loop
    from ..serving.realtime.sessions import session_for  # numpy: loaded on first use (beside the loop)

    services = current()
    config = body.get("session") or {"type": "realtime"}
    kind = config.get("type", "realtime")
    await hosted_tools.check(services, context.caller(), config, "session.")  # the project's hosted tools
    # The session a connection with this secret will start with: checked now, shown now.
    # The secret carries the whole configuration, so all of it is held to a session's bound
    # (an 8 MiB one made an 11 MB secret, sealed on the loop), counted beside the loop.
    limit = services.settings.realtime_config_bytes
    await off_loop(checked_config_size, config, limit, "session")
    session = await off_loop(session_for, services, _nowhere, None, kind, config.get("model"), config)
    answer = session.to_openai()
    await session.close()
    seconds = (body.get("expires_after") or {}).get("seconds", DEFAULT_SECONDS)
    expires_at = int(time.time()) + int(seconds)
    headers = dict(context.scope().get("headers") or [])
    token = headers.get(b"authorization", b"").decode().partition(" ")[2].strip()
    if services.client_secrets is None:
        raise RuntimeError("these services were built without client secrets (app/assembly.py builds them)")
    value = await off_loop(services.client_secrets.issue, digest(token), expires_at, config)
    return json_response({"value": value, "expires_at": expires_at, "session": answer})
