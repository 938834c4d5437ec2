"""The Realtime API, a family whose parts are still in the layers' folders
(``serving/realtime/``, ``http/realtime_socket.py``, ``controllers/realtime.py``): its
registration."""

from __future__ import annotations

from llm_backend.families.family import Family, Middleware, Wired


def _socket(wired: Wired) -> list[Middleware]:
    """The Realtime API: its client events checked by their schemas in the document."""
    from llm_backend.http.realtime_socket import RealtimeSocket  # with the app only (the registry: __init__.py)
    from llm_backend.spec import realtime_events

    path = wired.served.base_path + "/realtime"
    check_event = realtime_events.client_event_checker(wired.served.openai)
    arguments = {"services": wired.services, "authenticator": wired.authenticator, "observer": wired.observer}
    return [(RealtimeSocket, {"path": path, **arguments, "check_event": check_event})]


FAMILY = Family("realtime", sockets=_socket)
