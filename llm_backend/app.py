"""Build the ASGI application: the OpenAI document and our extensions on Connexion, the
cross-cutting middleware, and the backends started and stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from starlette.middleware.cors import CORSMiddleware
from swagger_ui_bundle import swagger_ui_path

from . import audit_key, off_loop
from .client_secrets import ClientSecrets
from .auth import Authenticator, Keyring
from .backends.events import ModelEvents
from .backends.pool import PoolPolicy
from .backends.registry import ModelRegistry
from .http import context, problems
from .http.context import Services
from .http.batch_lines import BatchLines
from .http.fast_lane import FastLane
from .http.forwarding import LOCAL_STATE_TAGS, SHARED_STATE_TAGS, Passthrough, UnservedOperations
from .http.metrics import Metrics
from .http.pages import Pages
from .http.project_limits import ProjectLimits
from .http.key_limits import LimitedAuthenticator, RateLimits, counters_for
from .http.realtime_socket import RealtimeSocket
from .http.responses_socket import ResponsesSocket
from .http.body_deadline import BodyDeadline
from .http.middleware import BodyLimit, CancelOnDisconnect, RecordOperation, RequestContext
from .http import tracing
from .http.anthropic_errors import AnthropicErrors
from .http.security import api_key_handler, security_handler
from .serving import expiry, uploads
from .serving.admin import retention, sampler
from .serving.admin.audit import RefusedLogins
from .serving.admin.meter import SpendMeter
from .serving.batches.runner import BatchRunner
from .serving.responses import background
from .settings import Settings, get_settings
from .spec import adapter, anthropic, client_events, docs, realtime_events, validation
from .spec.batch_endpoints import batch_endpoints
from .spec.loader import ANTHROPIC_SPEC, EXTENSIONS_SPEC, OPENAI_SPEC, load_document
from .storage import Database, default_url

log = logging.getLogger(__name__)
# createFile and addUploadPart: multipart uploads, bounded by max_upload_bytes instead of
# max_body_bytes ({...}: any one path segment).
UPLOAD_PATHS = frozenset({"/v1/files", "/v1/uploads/{upload_id}/parts"})
# The audio uploads: the file (max_audio_bytes) and room for the other fields of the form.
AUDIO_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")
FORM_FIELDS_ROOM = 1 << 20


def _registry(settings: Settings, events: ModelEvents) -> ModelRegistry:
    local = []
    if settings.local_models:
        # Imported only here: a pure gateway never loads the engine's packages.
        from .backends.llama.backend import LlamaBackend

        llama = LlamaBackend(settings, events)
        local.append(llama)
        embedding_model = None
        if settings.embedding_model:
            from .retrieval.embedding_model import EmbeddingModel

            embedding_model = EmbeddingModel(settings)
            local.append(embedding_model)
        if settings.local_moderation and (embedding_model or settings.moderation_guard):
            from .moderation.guard import Guard
            from .moderation.model import ModerationModel

            guard = Guard(llama, settings.moderation_guard) if settings.moderation_guard else None
            local.append(ModerationModel(embedding_model, guard, settings.moderation_inputs, settings.moderation_guard_inputs))
        if settings.transcription_model or settings.speech_model:
            from .backends.audio.backend import AudioBackend

            # A transcription takes every core only while no chat sequence decodes.
            engines_busy = lambda: any(model.sequences_in_use() for model in llama.local_models.values())  # noqa: E731
            local.append(AudioBackend(settings, events, engines_busy))
    configs = settings.upstream_configs()
    upstreams = []
    if configs:
        from .backends.upstream.backend import UpstreamBackend  # aiohttp: loaded only for an upstream

        upstreams = [UpstreamBackend(config, settings) for config in configs]
    catch_all = upstreams[0] if upstreams and settings.upstream_catch_all else None
    policy = PoolPolicy(settings.pool_cooldown, settings.pool_cooldown_max, settings.pool_probe_interval)
    weights = {config.name: config.weight for config in configs}
    return ModelRegistry(local, upstreams, catch_all, events, settings.fallbacks, policy, weights)


def _retrieval(services: Services) -> None:
    """The embedding model, when served (a local backend): the retrieval engine embeds with it."""
    from .retrieval.embedding_model import EmbeddingModel

    services.embedding_model = next(
        (backend for backend in services.registry.local if isinstance(backend, EmbeddingModel)), None
    )


async def _checked_body(schema: dict, operation_id: str, raw: bytes):
    return await validation.checked_json(schema, raw, operation_id)


def _public_metrics(extensions: dict) -> dict:
    """The extensions with ``GET /metrics`` open to anyone (``metrics_public``)."""
    paths = dict(extensions["paths"])
    paths["/metrics"] = {**paths["/metrics"], "get": {**paths["/metrics"]["get"], "security": []}}
    return {**extensions, "paths": paths}


def create_app(settings: Settings | None = None) -> AsyncApp:
    settings = settings or get_settings()
    started = time.perf_counter()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    events = ModelEvents()
    registry = _registry(settings, events)
    database = Database(settings.database_url or default_url(settings.data_dir), audit_key=audit_key.of(settings))
    services = Services(settings=settings, registry=registry, database=database, metrics=Metrics(registry, database))
    _retrieval(services)
    signing = settings.realtime_secret_key
    services.client_secrets = ClientSecrets(signing.get_secret_value().encode() if signing else None)
    keyring = Keyring.of(settings)

    async def prepare_database() -> None:
        if settings.database_migrate:
            await services.database.run(services.database.upgrade, owners=keyring.legacy_owners())
        # Each static keys' owner is a project of its own (docs/ADMIN.md).
        await services.database.run(services.database.projects.ensure_static, sorted(keyring.owners()))
        if settings.local_models:
            # Upload leftovers swept; store files a dead process left in_progress taken over.
            await services.database.run(services.retrieval.sweep)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        # The backends first: the eager models load in their workers (most of a start:
        # ~0.8 s for the default model) while the database is prepared here (0.1-0.3 s).
        await services.registry.start()
        try:
            await prepare_database()
        except BaseException:
            await services.registry.stop()
            raise
        # Background responses whose process is gone will never finish: failed.
        tasks = [asyncio.create_task(background.keep(services.database, settings.background_lease))]
        if settings.local_models:
            tasks.append(asyncio.create_task(services.retrieval.keep(settings.background_lease)))
            # Files and vector stores past their expires_after (serving/expiry.py).
            tasks.append(asyncio.create_task(expiry.sweep(services, settings.expiry_sweep_seconds)))
        services.database.usage.start()
        # Batches: taken by lease, resumed wherever their process died; uploads swept.
        tasks.append(asyncio.create_task(services.batches.run(), name="batch runner"))
        tasks.append(asyncio.create_task(uploads.keep(services), name="upload sweep"))
        tasks.append(asyncio.create_task(sampler.keep(services), name="vector store sampling"))
        tasks.append(asyncio.create_task(retention.keep(services, settings.expiry_sweep_seconds), name="data retention"))
        log.info(
            "models configured",
            extra={
                "models": [card.id for card in services.registry.local_models()],
                "upstreams": [upstream.name for upstream in services.registry.upstreams],
            },
        )
        off_loop.settle()  # the start-up's objects walked by no collection (off_loop.py)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await services.batches.stop()
            await background.stop(services.database)
            if "retrieval" in vars(services):
                await services.database.run(services.retrieval.stop)
            await services.registry.stop()
            await services.spend_meter.settled()
            await services.database.usage.stop()
            services.database.dispose()
            if traced is not None:
                await asyncio.to_thread(traced.shutdown)  # the last spans exported

    app = AsyncApp(__name__, lifespan=lifespan)
    rate_limits = RateLimits(
        settings, services.database.api_keys.limits, counters_for(settings, services.database)
    )
    services.project_limits = ProjectLimits(services.database)
    services.spend_meter = SpendMeter(services)
    services.spend_meter.current_hold = lambda: context.record().spend_hold  # the request's (project_limits.hold_spend)
    services.metrics.token_listeners += [rate_limits.spend, services.project_limits.spend, services.spend_meter.spend]
    traced = tracing.start(services.registry)
    if traced is not None:
        services.metrics.token_listeners.append(tracing.spend)
    if settings.usage_enabled:
        services.metrics.usage = services.database.usage
    services.database.usage.flush_interval = settings.usage_flush_seconds
    services.database.admin_snapshot.refresh_seconds = settings.control_plane_refresh_seconds
    authenticator = LimitedAuthenticator(
        Authenticator(keyring, services.database.api_keys, services.database.projects, RefusedLogins(services)),
        rate_limits,
        quota=services.spend_meter.admit,
    )
    api_options = {
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
    if settings.metrics_public:
        extensions = _public_metrics(extensions)
    app.add_api(extensions, name="extensions", resolver=adapter.ControllerResolver(extensions), **api_options)
    openai_document = load_document(settings.spec_dir / OPENAI_SPEC, settings.spec_cache_dir)
    # Anthropic's Messages API, served by the same API at /v1 (spec/anthropic.py says why).
    anthropic_document = load_document(settings.spec_dir / ANTHROPIC_SPEC, None)
    log.info("spec loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
    app.add_api(
        anthropic.joined(adapter.prepare(openai_document), anthropic_document),
        name="openai",
        resolver=adapter.ControllerResolver(openai_document),
        **api_options,
    )
    problems.register(app)
    # A pure gateway keeps no state for upstream models: the stateful families go upstream.
    forwarded = frozenset()
    if services.registry.default_upstream is not None and not settings.local_models:
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
    app.add_middleware(RecordOperation, MiddlewarePosition.BEFORE_SECURITY)
    # Everything that reads a body comes after Connexion's security: the key is known good
    # before a byte of the body is read (an unauthenticated request gets its 401 at once).
    app.add_middleware(
        BodyLimit,
        MiddlewarePosition.BEFORE_VALIDATION,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
        path_limits={path: settings.max_audio_bytes + FORM_FIELDS_ROOM for path in AUDIO_PATHS},
    )
    if services.registry.default_upstream is not None:
        app.add_middleware(
            UnservedOperations,
            MiddlewarePosition.BEFORE_VALIDATION,
            unserved=unserved | forwarded,
            forward=Passthrough(services.registry.default_upstream),
        )

    # Added in order from the outside in.
    observer = services.metrics if settings.metrics_enabled else None
    if traced is not None:  # OpenTelemetry, when OTEL_* ask for it (http/tracing.py)
        observer = traced.traced(observer)
    # Anthropic's clients get Anthropic's errors, whichever layer below answers one.
    app.add_middleware(AnthropicErrors, MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        RequestContext,
        MiddlewarePosition.BEFORE_EXCEPTION,
        services=services,
        observer=observer,
        allowed_origins=settings.cors_origins,
        allowed_hosts=settings.allowed_hosts,
        keyless=authenticator.open,
    )
    app.add_middleware(BodyDeadline, MiddlewarePosition.BEFORE_EXCEPTION, seconds=settings.body_timeout, min_rate=settings.body_min_rate)
    app.add_middleware(CancelOnDisconnect, MiddlewarePosition.BEFORE_EXCEPTION)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            MiddlewarePosition.BEFORE_EXCEPTION,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id"],
        )
    # After Connexion's routing and security (the key checked), before its validation. The
    # OpenAI document as Connexion resolved it ($refs followed) is the last API added.
    specification = app.middleware.apis[-1].specification
    body_operations = adapter.json_body_operations(specification)
    # Admin operations take Connexion's whole way (their own controllers' parameters).
    routes = {
        operation_id: (controller, functools.partial(_checked_body, schema, operation_id))
        for operation_id, controller, schema in body_operations.values()
        if operation_id not in forwarded and operation_id not in admin_operations
    }
    app.add_middleware(FastLane, MiddlewarePosition.BEFORE_VALIDATION, routes=routes)
    # Batch lines take the same routes to the same controllers (http/batch_lines.py).
    endpoints = batch_endpoints(body_operations, specification.base_path)
    # Each line admitted as its batch's key's request: the key, its project, the spend limits.
    services.batches = BatchRunner(services, BatchLines(services, endpoints, specification.base_path, observer, authenticator))
    # The Responses WebSocket mode: its events checked by createResponse's schema.
    responses_path = specification.base_path + "/responses"
    check_event = client_events.response_create_checker(
        client_events.envelope_schema(openai_document), body_operations[("POST", responses_path)][2]
    )
    app.add_middleware(
        ResponsesSocket,
        MiddlewarePosition.BEFORE_EXCEPTION,
        path=responses_path,
        services=services,
        authenticator=authenticator,
        check_event=check_event,
        observer=observer,
    )
    # The Realtime API: its client events checked by their schemas in the document.
    app.add_middleware(
        RealtimeSocket,
        MiddlewarePosition.BEFORE_EXCEPTION,
        path=specification.base_path + "/realtime",
        services=services,
        authenticator=authenticator,
        check_event=realtime_events.client_event_checker(openai_document),
        observer=observer,
    )
    # Built now (about 35 ms) so that the whole OpenAI document need not stay in memory.
    served = docs.as_json(docs.served_view(openai_document, specification.base_path))
    documents = {
        "openai.json": ("OpenAI API: the operations served here", lambda: served),
        "extensions.json": ("llm-backend: health, metrics, admin", lambda: docs.as_json(extensions)),
        "anthropic.json": ("Anthropic Messages API: the operations served here", lambda: docs.as_json(anthropic_document)),
    }
    app.add_middleware(Pages, MiddlewarePosition.BEFORE_EXCEPTION, documents=documents, swagger_dir=swagger_ui_path)
    log.info("app built", extra={"seconds": round(time.perf_counter() - started, 3)})
    return app
