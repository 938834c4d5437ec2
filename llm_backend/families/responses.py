"""The Responses API, a family whose parts are still in the layers' folders
(``serving/responses/``, ``http/responses_socket.py``, ``controllers/responses.py``,
``storage/responses.py``): its registration. Background responses whose process is gone
will never finish: failed (``serving/responses/background.py``). A pure gateway keeps no
responses or conversations (they go upstream), unless an upstream's models have their
Responses served here over its chat (``responses: local``): then they all live here."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Answered, Family, Middleware, Wired, gateway_forwards
from llm_backend.serving.services import Services
from llm_backend.settings import Settings

# The hooks import their modules when the app is built (the registry: __init__.py).


def _tasks(services: Services) -> list[asyncio.Task]:
    from llm_backend.serving.responses import background

    return [asyncio.create_task(background.keep(services.database, services.settings.background_lease))]


async def _stop(services: Services) -> None:
    from llm_backend.serving.responses import background

    await background.stop(services.database)


def _socket(wired: Wired) -> list[Middleware]:
    """The Responses WebSocket mode: its events checked by createResponse's schema."""
    from llm_backend.http.responses_socket import ResponsesSocket
    from llm_backend.spec import client_events

    path = wired.served.base_path + "/responses"
    check_event = client_events.response_create_checker(
        client_events.envelope_schema(wired.served.openai), wired.served.body_operations[("POST", path)][2]
    )
    arguments = {"services": wired.services, "authenticator": wired.authenticator, "observer": wired.observer}
    return [(ResponsesSocket, {"path": path, **arguments, "check_event": check_event})]


_forwarded_by_a_gateway = gateway_forwards("Responses", "Conversations")


def _answered(settings: Settings, document: dict, gateway: bool) -> Answered:
    here = any(config.responses == "local" for config in settings.upstream_configs())
    return _forwarded_by_a_gateway(settings, document, gateway and not here)


FAMILY = Family("responses", start=_tasks, stop=_stop, sockets=_socket, answered=_answered)
