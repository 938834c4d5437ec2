"""An upstream API some models are routed to (the config file's ``upstreams:``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class UpstreamConfig(BaseModel):
    """An upstream API that some models are routed to (config file ``upstreams:``): an
    OpenAI-compatible one, or Anthropic's Messages API (``api: anthropic``)."""

    name: str
    base_url: str = Field(description="the API root, with /v1, e.g. https://api.openai.com/v1")
    api_key: SecretStr | None = Field(None, description="the key itself (prefer api_key_env)")
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    headers: dict[str, str] = Field({}, description="extra headers sent with every request")
    models: list[str] = Field(
        [], description="model ids and glob patterns (gpt-*, o*) routed to this upstream"
    )
    aliases: dict[str, str] = Field({}, description="our model id -> the upstream's model id")
    weight: float = Field(1.0, gt=0, description="share of a pooled model's traffic, relative to its other deployments")
    responses: Literal["forward", "local"] = Field(
        "forward",
        description="Responses API for these models: forward (the upstream serves it) or local "
        "(served here over the upstream's chat completions, stored here)",
    )
    api: Literal["openai", "anthropic"] = Field(
        "openai",
        description="the API it speaks: openai (OpenAI-compatible), or anthropic (Anthropic's Messages "
        "API: its models answer only POST /v1/messages and count_tokens, passed through unchanged "
        "with its key as x-api-key)",
    )
    isolate_prompt_cache: Literal["prompt_cache_key", "cache_salt"] | None = Field(
        None,
        description="the request field set on each chat completion and completion to a value of the tenant's own (a "
        "digest, never its name), so that its prompt cache is not another tenant's: prompt_cache_key (OpenAI's), "
        "cache_salt (vLLM's); unset: the upstream's prompt cache is shared by every tenant of it (docs/UPSTREAM.md)",
    )

    @model_validator(mode="after")
    def _anthropic_passes_bodies_unchanged(self) -> "UpstreamConfig":
        # A body passed through as its bytes cannot have its model renamed nor a field added,
        # nor be answered by the Responses layer over chat completions this upstream does not speak.
        if self.api == "anthropic" and (self.aliases or self.responses == "local" or self.isolate_prompt_cache):
            raise ValueError(
                f"upstream {self.name}: api: anthropic takes neither aliases, responses: local nor isolate_prompt_cache"
            )
        return self

    @property
    def key(self) -> str | None:
        """The upstream key, read from the environment at start-up when named there."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return self.api_key.get_secret_value() if self.api_key else None
