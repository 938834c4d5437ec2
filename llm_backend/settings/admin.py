"""What the organisation sets for its projects and keys: the Admin API's home, rate limits,
prices, usage accounting, spend alerts and data retention (docs/ADMIN.md). Part of
``Settings`` (settings.py), kept apart by noun."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Price(BaseModel):
    """What a model costs (the price table, ``prices:``; docs/ADMIN.md): USD, each per unit
    named. A model no entry matches costs nothing (local models, unless priced)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model id, or a glob (gpt-4o-*)")
    input: float = Field(0, ge=0, description="per 1M input tokens (not cached)")
    cached_input: float | None = Field(None, ge=0, description="per 1M cached input tokens (default: input's price)")
    output: float = Field(0, ge=0, description="per 1M output tokens")
    audio_minute: float = Field(0, ge=0, description="per minute of audio transcribed or translated")
    characters: float = Field(0, ge=0, description="per 1M characters spoken (speech)")
    file_search_calls: float = Field(0, ge=0, description="per 1,000 file_search calls")
    image: float = Field(0, ge=0, description="per image generated, edited or varied (forwarded image operations)")
    vector_store_gb_day: float = Field(0, ge=0, description="per GB of vector stores kept a day")
    context_window: int | None = Field(
        None, ge=1, description="the model's context in tokens: what a request naming no output cap is held for "
        "against a hard spend limit (default: a local model's n_ctx, else all that remains of the limit)"
    )


class AdminSettings(BaseModel):
    admin_api: Literal["local", "upstream"] = Field(
        "local",
        description="the organisation's Admin API (projects, keys, limits, spend, audit log): served here (local), or "
        "forwarded to the default upstream's organisation with its key (upstream; usage and costs stay here)",
    )
    audit_log_key: SecretStr | None = Field(
        None,
        description="seals the audit log's entries into a chain (`llm-backend audit verify`); default: a random key kept "
        "in <data_dir>/audit-log.key. Replicas on one database must share it (or the data directory); keep it away from "
        "the database's owners",
    )
    prices: list[Price] = Field(
        [], description="the price table: the first entry whose model (id or glob) matches prices a request (docs/ADMIN.md)"
    )
    data_retention_seconds: float = Field(
        30 * 86400, gt=0,
        description="how long a project whose data retention is modified_abuse_monitoring keeps its stored objects "
        "(zero_data_retention: until the next sweep); docs/ADMIN.md",
    )
    control_plane_refresh_seconds: float = Field(
        2.0, gt=0, description="how often a replica reads the control plane's settings again (docs/ADMIN.md): a change on another applies here within it"
    )
    spend_alert_webhook_url: str = Field(
        "", description="where spend alerts are POSTed (a signed body, Standard Webhooks' headers); empty: the audit log only"
    )
    spend_alert_webhook_secret: SecretStr | None = Field(
        None, description="signs spend alerts' webhook bodies (whsec_…: base64, as OpenAI's webhook secrets)"
    )
    rate_limit_rpm: int = Field(0, ge=0, description="requests per minute of each static API key (0: unlimited)")
    rate_limit_tpm: int = Field(0, ge=0, description="tokens per minute of each static API key (0: unlimited)")
    rate_limit_tpd: int = Field(0, ge=0, description="tokens per UTC day of each static API key (0: unlimited)")
    rate_limit_storage: str = Field(
        "",
        description="where rate-limit counters live: empty: the database when it is PostgreSQL (shared by the "
        "replicas), else memory; `database`; or a `limits` storage URI (memory://, redis://...)",
    )
    usage_enabled: bool = Field(True, description="record every answer's tokens for the usage operations and `llm-backend usage`")
    usage_flush_seconds: float = Field(
        5.0, gt=0, description="how often the usage accounting is written to the database (and at shutdown)"
    )
