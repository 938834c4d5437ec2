"""The documents the app serves, added to Connexion: our extensions (with the operations
families bring in fragments of their own), then the OpenAI document joined with Anthropic's
Messages API; and the forwarding rules they imply (``http/forwarding.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from connexion import AsyncApp
from connexion.options import SwaggerUIOptions
from connexion.spec import Specification

from ..backends.registry import ModelRegistry
from ..http.forwarding import LOCAL_STATE_TAGS, SHARED_STATE_TAGS
from ..http.key_limits import LimitedAuthenticator
from ..http.security import api_key_handler, security_handler
from ..settings import Settings
from ..spec import adapter, anthropic
from ..spec.loader import ANTHROPIC_SPEC, EXTENSIONS_SPEC, OPENAI_SPEC, load_document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """The documents as served, and which of their operations are answered how."""

    openai: dict
    extensions: dict
    anthropic: dict
    specification: Specification  # the OpenAI document as Connexion resolved it ($refs followed)
    forwarded: frozenset[str]  # operations sent verbatim to the default upstream
    admin_operations: frozenset[str]  # the Admin API's (Connexion's whole way, never the fast lane)
    unserved: frozenset[str]  # operations no controller here answers
    # (method, path) -> (operationId, controller, body schema) of the operations whose whole
    # input is a JSON body (adapter.json_body_operations): the fast lane's and batch lines'.
    body_operations: dict[tuple[str, str], tuple[str, Callable, dict]]

    @property
    def base_path(self) -> str:
        return self.specification.base_path


def with_fragment(document: dict, fragment: dict) -> dict:
    """``document`` with a family's own operations (``Family.document``) and their schemas."""
    components = dict(document.get("components", {}))
    for kind, entries in fragment.get("components", {}).items():
        components[kind] = {**components.get(kind, {}), **entries}
    return {**document, "paths": {**document["paths"], **fragment.get("paths", {})}, "components": components}


def _public_metrics(extensions: dict) -> dict:
    """The extensions with ``GET /metrics`` open to anyone (``metrics_public``)."""
    paths = dict(extensions["paths"])
    paths["/metrics"] = {**paths["/metrics"], "get": {**paths["/metrics"]["get"], "security": []}}
    return {**extensions, "paths": paths}


def serve(
    app: AsyncApp, settings: Settings, registry: ModelRegistry, authenticator: LimitedAuthenticator,
    fragments: Iterable[Path], started: float,
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
    # The extensions first: Connexion then falls through from their root mount to /v1.
    extensions = load_document(settings.spec_dir / EXTENSIONS_SPEC, None)
    for fragment in fragments:
        extensions = with_fragment(extensions, load_document(fragment, None))
    if settings.metrics_public:
        extensions = _public_metrics(extensions)
    app.add_api(extensions, name="extensions", resolver=adapter.ControllerResolver(extensions), **options)
    openai_document = load_document(settings.spec_dir / OPENAI_SPEC, settings.spec_cache_dir)
    # Anthropic's Messages API, served by the same API at /v1 (spec/anthropic.py says why).
    anthropic_document = load_document(settings.spec_dir / ANTHROPIC_SPEC, None)
    log.info("spec loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
    app.add_api(
        anthropic.joined(adapter.prepare(openai_document), anthropic_document),
        name="openai",
        resolver=adapter.ControllerResolver(openai_document),
        **options,
    )
    # A pure gateway keeps no state for upstream models: the stateful families go upstream.
    forwarded = frozenset()
    if registry.default_upstream is not None and not settings.local_models:
        tags = LOCAL_STATE_TAGS
        if any(config.responses == "local" for config in settings.upstream_configs()):
            tags = LOCAL_STATE_TAGS - SHARED_STATE_TAGS  # Responses of those upstreams' models live here
        forwarded = adapter.operation_ids_of(openai_document, tags)
    # The Admin API: the organisation here is this service's (docs/ADMIN.md); only an
    # operator who asks sends it upstream, to act on the upstream organisation with its key.
    admin_operations = adapter.admin_operation_ids(openai_document)
    unserved = adapter.unserved_operation_ids(openai_document)
    if settings.admin_api == "upstream":
        forwarded |= admin_operations - adapter.operation_ids_of(openai_document, frozenset({"Usage"}))
    else:
        unserved -= admin_operations
    specification = app.middleware.apis[-1].specification
    return Served(
        openai_document, extensions, anthropic_document, specification, forwarded, admin_operations, unserved,
        adapter.json_body_operations(specification),
    )
