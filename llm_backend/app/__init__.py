"""Build the ASGI application (rank 5), read as a table of contents (``create_app`` below): the
app's parts, its documents on Connexion, the middleware chain, and what each family adds
(``llm_backend/families``: its documents, controllers, middleware, background work, WebSocket
endpoints and pages), read from the registry: the app names no family.

- ``assembly.py``: the parts, built once and in order, each from the ones before it: the
  models and the database; what governs a request (its key, rate limits, project limits,
  spend); the metrics; then ``Services``, frozen (``serving/services.py``);
- ``documents.py``: the documents on Connexion: the extensions with the families' fragments,
  OpenAI's with the documents families serve beside it joined, each operation routed to its
  tag's controller; where each is answered: here, or by the default upstream, as its family
  says (``Family.answered``, ``http/forwarding.py``);
- ``chain.py``: the HTTP middleware in Connexion's positions: before the key is checked,
  before a body is read (the body limits, the families' among them), around every request
  (the families' own outermost), the fast lane;
- ``lifespan.py``: the backends started and the database prepared before the first request,
  the families' background work beside the requests, everything stopped in order;
- ``model_registry.py``: the settings' models as backends, each imported only when configured
  (a pure gateway never loads the engine's packages), an upstream of the kind its ``api``
  names (OpenAI's, or a family's: ``Family.upstreams``).
"""

from __future__ import annotations

import logging
import time

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from swagger_ui_bundle import swagger_ui_path

from .. import families as registry
from ..families.family import Wired
from ..http.pages import Pages
from ..http.socket_endpoint import NoSocket
from ..serving.claims import objectless_operations
from ..serving.services import Services
from ..settings import Settings, get_settings
from . import chain, documents
from .assembly import assemble, batch_lines
from .lifespan import running

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> AsyncApp:
    settings = settings or get_settings()
    started = time.perf_counter()
    families = registry.FAMILIES
    for family in families:
        if family.settings is not None:
            settings.of(family.settings)  # checked now: a bad value stops the start, not a request
    parts = assemble(settings, families)
    # Connexion takes the lifespan now; it runs once the app serves, with ``services`` below
    # (built after the documents are served: batch lines take their routes).
    services: Services
    app = AsyncApp(__name__, lifespan=lambda _app: running(services, parts, families))
    served = documents.serve(app, settings, parts.registry, parts.authenticator, families, started)
    observer = parts.observer()
    # Only a forwarded answer is guarded: a service without upstreams skips the walk (15 ms).
    objectless = objectless_operations(served.openai) if parts.registry.upstreams else frozenset()
    services = parts.services(batch_lines(served, observer, parts.authenticator, families), objectless)
    wired = Wired(services, served, parts.authenticator, observer)
    chain.add(app, settings, wired, families)
    for family in families:
        for middleware, arguments in family.sockets(wired):
            app.add_middleware(middleware, MiddlewarePosition.BEFORE_EXCEPTION, **arguments)
    pages = documents.pages(served)
    pages.update({name: page for family in families for name, page in family.pages(served).items()})
    app.add_middleware(Pages, MiddlewarePosition.BEFORE_EXCEPTION, documents=pages, swagger_dir=swagger_ui_path)
    app.add_middleware(NoSocket, MiddlewarePosition.BEFORE_EXCEPTION)  # inside them all: a socket none took
    log.info("app built", extra={"seconds": round(time.perf_counter() - started, 3)})
    return app
