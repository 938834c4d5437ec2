"""What one Realtime session may make the server hold or do (docs/REALTIME.md, "One pipeline,
bounded"), and the key of its client secrets. Part of ``Settings`` (settings.py), kept apart
by noun."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class RealtimeSettings(BaseModel):
    realtime_secret_key: SecretStr | None = Field(
        None,
        description="encrypts and signs the Realtime API's ephemeral client secrets, and (a key derived apart) the "
        "Responses API's reasoning encrypted_content; default: a random key per process (a secret, or sealed reasoning, "
        "then works only on the replica that made it)",
    )
    realtime_session_seconds: float = Field(
        1800, gt=0, description="longest Realtime session (/v1/realtime): then its connection is closed, as OpenAI's"
    )
    # What one Realtime session may make the server hold or do (docs/REALTIME.md, "One pipeline, bounded").
    realtime_sessions_per_key: int = Field(
        8, ge=1, description="Realtime sessions one key (its tenant) may have open at once on a replica; one more: 429"
    )
    realtime_sessions_per_secret: int = Field(
        2, ge=1, description="Realtime sessions one ephemeral client secret may have open at once on a replica; one more: 429"
    )
    realtime_max_items: int = Field(1000, ge=1, description="items a Realtime conversation holds; one more: conversation_full")
    realtime_conversation_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="memory a Realtime conversation's items may take; more: conversation_full"
    )
    realtime_config_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="memory a Realtime session's configuration (instructions, tools, transcription prompt) may take, "
        "and a response.create's; more: session_config_too_large",
    )
    realtime_buffer_seconds: float = Field(
        300, gt=0, description="input audio a Realtime session holds uncommitted; more: input_audio_buffer_full"
    )
    realtime_audio_lead_seconds: float = Field(
        300,
        gt=0,
        description="how far a Realtime session's input audio may run ahead of the clock (silence included: what "
        "the VAD must hear); further: input_audio_too_fast",
    )
    realtime_pending_turns: int = Field(
        4, ge=1, description="turns of a Realtime session waiting to be transcribed; one more: too_many_pending_turns"
    )
    realtime_event_values: int = Field(
        20_000, ge=100, description="JSON values one Realtime client event may hold; more: the event refused (invalid_value)"
    )
