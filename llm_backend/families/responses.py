"""The Responses API, a family whose parts are still in the layers' folders
(``serving/responses/``, ``http/responses_socket.py``, ``controllers/responses.py``,
``storage/responses.py``): its registration. Background responses whose process is gone
will never finish: failed (``serving/responses/background.py``)."""

from __future__ import annotations

import asyncio

from llm_backend.families.family import Family, Middleware, Wired
from llm_backend.serving.services import Services

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


FAMILY = Family("responses", start=_tasks, stop=_stop, sockets=_socket)
