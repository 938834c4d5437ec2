"""The families whose work goes beyond their controllers and stores (``family.py`` says what
that is): adding a family adds a line to ``FAMILIES``. Their order is the order their tasks
start, their sockets are added and their pages listed; they stop in the reverse order."""

from __future__ import annotations

import asyncio

from ..http.realtime_socket import RealtimeSocket
from ..http.responses_socket import ResponsesSocket
from ..serving import expiry, uploads
from ..serving.admin import retention, sampler
from ..serving.responses import background
from ..serving.services import Services
from ..spec import client_events, docs, realtime_events
from .documents import Served
from .family import Document, Family, Middleware, Wired


def _retrieval_tasks(services: Services) -> list[asyncio.Task]:
    settings = services.settings
    if not settings.local_models:
        return []
    # Store files a dead process left in_progress are taken over; files and vector stores
    # past their expires_after swept (serving/expiry.py).
    return [
        asyncio.create_task(services.retrieval.keep(settings.background_lease)),
        asyncio.create_task(expiry.sweep(services, settings.expiry_sweep_seconds)),
    ]


async def _retrieval_stop(services: Services) -> None:
    if "retrieval" in vars(services):  # built only when used
        await services.database.run(services.retrieval.stop)


def _responses_socket(wired: Wired) -> list[Middleware]:
    """The Responses WebSocket mode: its events checked by createResponse's schema."""
    path = wired.served.base_path + "/responses"
    check_event = client_events.response_create_checker(
        client_events.envelope_schema(wired.served.openai), wired.served.body_operations[("POST", path)][2]
    )
    arguments = {"services": wired.services, "authenticator": wired.authenticator, "observer": wired.observer}
    return [(ResponsesSocket, {"path": path, **arguments, "check_event": check_event})]


def _realtime_socket(wired: Wired) -> list[Middleware]:
    """The Realtime API: its client events checked by their schemas in the document."""
    path = wired.served.base_path + "/realtime"
    check_event = realtime_events.client_event_checker(wired.served.openai)
    arguments = {"services": wired.services, "authenticator": wired.authenticator, "observer": wired.observer}
    return [(RealtimeSocket, {"path": path, **arguments, "check_event": check_event})]


def _documents(served: Served) -> dict[str, Document]:
    # Built now (about 35 ms) so that the whole OpenAI document need not stay in memory.
    openai = docs.as_json(docs.served_view(served.openai, served.base_path))
    extensions, anthropic = served.extensions, served.anthropic
    return {
        "openai.json": ("OpenAI API: the operations served here", lambda: openai),
        "extensions.json": ("llm-backend: health, metrics, admin", lambda: docs.as_json(extensions)),
        "anthropic.json": ("Anthropic Messages API: the operations served here", lambda: docs.as_json(anthropic)),
    }


FAMILIES: tuple[Family, ...] = (
    Family("retrieval", start=_retrieval_tasks, stop=_retrieval_stop),
    # Background responses whose process is gone will never finish: failed.
    Family(
        "responses",
        start=lambda services: [asyncio.create_task(background.keep(services.database, services.settings.background_lease))],
        stop=lambda services: background.stop(services.database),
        sockets=_responses_socket,
    ),
    # Batches: taken by lease, resumed wherever their process died.
    Family(
        "batches",
        start=lambda services: [asyncio.create_task(services.batches.run(), name="batch runner")],
        stop=lambda services: services.batches.stop(),
    ),
    Family("uploads", start=lambda services: [asyncio.create_task(uploads.keep(services), name="upload sweep")]),
    Family(
        "admin",
        start=lambda services: [
            asyncio.create_task(sampler.keep(services), name="vector store sampling"),
            asyncio.create_task(retention.keep(services, services.settings.expiry_sweep_seconds), name="data retention"),
        ],
    ),
    Family("realtime", sockets=_realtime_socket),
    Family("documents", pages=_documents),
)
