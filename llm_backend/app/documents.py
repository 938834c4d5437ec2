"""The documents the app serves, added to Connexion: our extensions (with the operations
families bring in fragments of their own), then the OpenAI document with the documents
families serve beside it joined (``Family.joined``), each operation routed to its family's
controller where one names its tag (``Family.controllers``); where each operation is
answered, here or by the default upstream, as the families say (``Family.answered``,
``http/forwarding.py``); and the app's own pages of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from connexion import AsyncApp
from connexion.options import SwaggerUIOptions

from ..backends.registry import ModelRegistry
from ..families.family import Document, Family, Served
from ..http.key_limits import LimitedAuthenticator
from ..http.security import api_key_handler, security_handler
from ..settings import Settings
from ..spec import adapter, docs
from ..spec.loader import EXTENSIONS_SPEC, OPENAI_SPEC, load_document

log = logging.getLogger(__name__)


def with_fragment(document: dict, fragment: dict) -> dict:
    """``document`` with a family's own operations (``Family.document``) and their schemas."""
    components = dict(document.get("components", {}))
    for kind, entries in fragment.get("components", {}).items():
        components[kind] = {**components.get(kind, {}), **entries}
    return {**document, "paths": {**document["paths"], **fragment.get("paths", {})}, "components": components}


def routed(document: dict, controllers: Mapping[str, str]) -> dict:
    """``document`` with each operation of a tag in ``controllers`` (tag -> module: the
    families') routed to that module (``x-openapi-router-controller``, ``spec/adapter.py``)."""
    if not controllers:
        return document
    paths = {}
    for path, item in document.get("paths", {}).items():
        tags = {
            method: controllers.get(adapter.first_tag(operation))
            for method, operation in item.items() if method in adapter.HTTP_METHODS
        }
        paths[path] = {
            **item,
            **{method: {"x-openapi-router-controller": module, **item[method]} for method, module in tags.items() if module},
        }
    return {**document, "paths": paths}


def _public_metrics(extensions: dict) -> dict:
    """The extensions with ``GET /metrics`` open to anyone (``metrics_public``)."""
    paths = dict(extensions["paths"])
    paths["/metrics"] = {**paths["/metrics"], "get": {**paths["/metrics"]["get"], "security": []}}
    return {**extensions, "paths": paths}


def serve(
    app: AsyncApp, settings: Settings, registry: ModelRegistry, authenticator: LimitedAuthenticator,
    families: Sequence[Family], started: float,
) -> Served:
    options = {
        "validator_map": adapter.VALIDATOR_MAP,
        "uri_parser_class": adapter.URI_PARSER,
        "security_map": {"bearer": security_handler(authenticator), "apiKey": api_key_handler(authenticator)},
        "strict_validation": False,
        "validate_responses": False,
        # Connexion would serve each API's document itself, to anyone: /v1/openapi.json
        # copied and resolved on every request (30 MB, 0.9 s of the event loop) and
        # /v1/openapi.yaml (70 MB, 52 s), and its own Swagger UI at /v1/ui. The pages
        # serve the documents once built (http/pages.py, /docs); Connexion serves none.
        "swagger_ui_options": SwaggerUIOptions(serve_spec=False, swagger_ui=False),
    }
    controllers = {tag: module for family in families for tag, module in family.controllers.items()}
    # The extensions first: Connexion then falls through from their root mount to /v1.
    extensions = load_document(settings.spec_dir / EXTENSIONS_SPEC, None)
    for family in families:
        if family.document is not None:
            extensions = with_fragment(extensions, load_document(family.document, None))
    extensions = routed(extensions, controllers)
    if settings.metrics_public:
        extensions = _public_metrics(extensions)
    app.add_api(extensions, name="extensions", resolver=adapter.ControllerResolver(extensions), **options)
    openai_document = routed(load_document(settings.spec_dir / OPENAI_SPEC, settings.spec_cache_dir), controllers)
    log.info("spec loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
    # The documents families serve beside OpenAI's, by the same API at /v1 (``Joined`` says why).
    documents, served_document = {}, adapter.prepare(openai_document)
    for family in families:
        if family.joined is not None:
            documents[family.name] = load_document(settings.spec_dir / family.joined.file, None)
            served_document = family.joined.join(served_document, routed(documents[family.name], controllers))
    app.add_api(served_document, name="openai", resolver=adapter.ControllerResolver(openai_document), **options)
    # An operation with a controller is served here, one without goes to the default
    # upstream; each family says which of its own are answered otherwise (``Family.answered``:
    # a pure gateway keeps no state for upstream models, so it forwards the stateful ones).
    gateway = registry.default_upstream is not None and not settings.local_models
    answered = [family.answered(settings, openai_document, gateway) for family in families]
    forwarded = frozenset().union(*(said.forwarded for said in answered))
    unserved = adapter.unserved_operation_ids(openai_document) - frozenset().union(*(said.kept for said in answered))
    whole_way = frozenset().union(*(said.whole_way for said in answered))
    specification = app.middleware.apis[-1].specification
    return Served(
        openai_document, extensions, documents, specification, forwarded, whole_way, unserved,
        adapter.json_body_operations(specification),
    )


def pages(served: Served) -> dict[str, Document]:
    """The app's own documents on the pages (a family adds its own: ``Family.pages``)."""
    # Built now (about 35 ms) so that the whole OpenAI document need not stay in memory.
    openai = docs.as_json(docs.served_view(served.openai, served.base_path))
    extensions = served.extensions
    return {
        "openai.json": ("OpenAI API: the operations served here", lambda: openai),
        "extensions.json": (extensions["info"]["title"], lambda: docs.as_json(extensions)),
    }
