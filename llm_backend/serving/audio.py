"""The Audio operations' rules and answers, over an audio backend's events.

``transcription`` turns a createTranscription / createTranslation body into the engine's
parameters (refusing what the local model cannot honour, each with a 400 naming the
parameter) and its events into the answer OpenAI gives for the ``response_format``: an
object (json, verbose_json), text (text, srt, vtt), or ``transcript.text.*`` events.
``speech`` does the same for createSpeech: the audio bytes as they are encoded, or
``speech.audio.*`` events.

Usage, as OpenAI reports it: a transcription object has ``{"type": "duration", "seconds"}``
(whole seconds, rounded up); a stream's ``transcript.text.done`` has tokens: audio tokens
are Whisper's encoder positions (50 per second of audio), text tokens the prompt's, output
tokens the transcript's. Speech: input tokens are the phonemes read, output tokens the
audio frames synthesized (80 per second).
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..backends.base import Stream
from ..errors import bad_request
from ..errors import not_supported_by_model as unsupported
from ..json.types import Json
from .audio_languages import LANGUAGE_NAMES

AUDIO_TOKENS_PER_SECOND = 50
SPEECH_FRAMES_PER_SECOND = 80
SPEECH_MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
TEXT_FORMATS = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}
# Parameters of the document that only OpenAI's newer models honour: refused, not ignored.
UNSUPPORTED_FIELDS = ("known_speaker_names", "known_speaker_references", "languages", "keywords")


# --- speech to text ------------------------------------------------------------------------


def transcription_params(body: Json, path: str, task: str) -> Json:
    """The engine's parameters for a transcription (``task`` transcribe) or translation."""
    model_id = body["model"]
    response_format = body.get("response_format") or "json"
    for field in UNSUPPORTED_FIELDS:
        if body.get(field):
            raise unsupported(field, model_id)
    if response_format == "diarized_json":
        raise bad_request(
            f"response_format 'diarized_json' is not supported with the model `{model_id}`: it does not tell speakers apart.",
            "response_format",
            "unsupported_value",
        )
    granularities = body.get("timestamp_granularities") or ["segment"]
    if "word" in granularities and response_format != "verbose_json":
        raise bad_request(
            "timestamp_granularities 'word' requires response_format 'verbose_json'.", "timestamp_granularities", "invalid_value"
        )
    logprobs = "logprobs" in (body.get("include") or [])
    if logprobs and response_format != "json":
        raise bad_request("include 'logprobs' requires response_format 'json'.", "include", "invalid_value")
    if body.get("stream") and response_format not in ("json", "text"):
        raise bad_request("Streaming is supported with response_format 'json' or 'text'.", "stream", "invalid_value")
    return {
        "path": path,
        "task": task,
        "language": body.get("language") if task == "transcribe" else None,
        "prompt": body.get("prompt"),
        "temperature": float(body.get("temperature") or 0),
        "words": "word" in granularities or logprobs,
        "chunking": chunking(body.get("chunking_strategy")),
    }


def chunking(strategy: Any) -> Any:
    """``auto`` or a ``server_vad`` object: voice activity detection cuts the audio; unset:
    one block, as OpenAI does."""
    if strategy in (None, ""):
        return None
    if strategy == "auto":
        return {}
    if isinstance(strategy, dict) and strategy.get("type") == "server_vad":
        return strategy
    raise bad_request("Invalid 'chunking_strategy': expected 'auto' or a server_vad object.", "chunking_strategy", "invalid_value")


class Transcript:
    """A transcription's events gathered: language, duration, segments, token counts."""

    def __init__(self) -> None:
        self.language = "en"
        self.duration = 0.0
        self.segments: list[Json] = []
        self.prompt_tokens = 0

    def add(self, event: Json) -> Json | None:
        """Take one engine event; returns the segment it carried, if any."""
        kind = event.get("event")
        if kind == "info":
            self.language, self.duration = event["language"], event["duration"]
        elif kind == "segment":
            segment = event["segment"]
            self.segments.append(segment)
            return segment
        elif kind == "usage":
            self.prompt_tokens = event.get("prompt_tokens", 0)
        return None

    @property
    def text(self) -> str:
        return "".join(segment["text"] for segment in self.segments).strip()

    def seconds_usage(self) -> Json:
        return {"type": "duration", "seconds": math.ceil(self.duration)}

    def token_usage(self) -> Json:
        audio = math.ceil(self.duration * AUDIO_TOKENS_PER_SECOND)
        output = sum(len(segment["tokens"]) for segment in self.segments)
        return {
            "type": "tokens",
            "input_tokens": audio + self.prompt_tokens,
            "input_token_details": {"text_tokens": self.prompt_tokens, "audio_tokens": audio},
            "output_tokens": output,
            "total_tokens": audio + self.prompt_tokens + output,
        }


def _logprobs(segments: list[Json]) -> list[Json]:
    # Whisper's word probabilities (faster-whisper's), one entry per word.
    return [
        {"token": word["word"], "logprob": word["logprob"], "bytes": list(word["word"].encode())}
        for segment in segments
        for word in segment.get("words", [])
    ]


async def transcription_answer(
    events: AsyncIterator[Json], body: Json, task: str, measured: Callable[[float], None] | None = None
) -> Json | str:
    """The whole answer: an object for json / verbose_json, text for text / srt / vtt.
    ``measured(seconds)``: told the audio's duration once it is transcribed (usage)."""
    transcript = Transcript()
    async for event in events:
        transcript.add(event)
    if measured is not None:
        measured(transcript.duration)
    response_format = body.get("response_format") or "json"
    if response_format == "json":
        answer: Json = {"text": transcript.text}
        if "logprobs" in (body.get("include") or []):
            answer["logprobs"] = _logprobs(transcript.segments)
        return {**answer, "usage": transcript.seconds_usage()}
    if response_format == "verbose_json":
        return verbose(transcript, body, task)
    if response_format == "text":
        return transcript.text + "\n"
    return subtitles(transcript.segments, response_format)


def verbose(transcript: Transcript, body: Json, task: str) -> Json:
    granularities = body.get("timestamp_granularities") or ["segment"]
    answer: Json = {
        "task": task,
        "language": "english" if task == "translate" else LANGUAGE_NAMES.get(transcript.language, transcript.language),
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if "word" in granularities:
        answer["words"] = [
            {"word": word["word"].strip(), "start": word["start"], "end": word["end"]}
            for segment in transcript.segments
            for word in segment.get("words", [])
        ]
    if "segment" in granularities:
        answer["segments"] = [{k: v for k, v in s.items() if k != "words"} for s in transcript.segments]
    answer["usage"] = transcript.seconds_usage()
    return answer


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}{separator}{millis % 1000:03d}"


def subtitles(segments: list[Json], response_format: str) -> str:
    """SubRip or WebVTT cues, one per segment."""
    separator = "," if response_format == "srt" else "."
    cues = []
    for number, segment in enumerate(segments, 1):
        span = f"{_timestamp(segment['start'], separator)} --> {_timestamp(segment['end'], separator)}"
        text = segment["text"].strip()
        cues.append(f"{number}\n{span}\n{text}\n" if response_format == "srt" else f"{span}\n{text}\n")
    if response_format == "vtt":
        return "WEBVTT\n\n" + "\n".join(cues)
    return "\n".join(cues)


async def transcription_events(
    events: Stream[Json], body: Json, measured: Callable[[float], None] | None = None
) -> Stream[Json]:
    """``transcript.text.delta`` per segment as it is transcribed, then ``transcript.text.done``
    (``measured(seconds)`` told the duration before it)."""
    transcript = Transcript()
    logprobs = "logprobs" in (body.get("include") or [])
    try:
        async for event in events:
            segment = transcript.add(event)
            if segment is not None:
                delta: Json = {"type": "transcript.text.delta", "delta": segment["text"] if transcript.segments[1:] else segment["text"].lstrip()}
                if logprobs:
                    delta["logprobs"] = _logprobs([segment])
                yield delta
    finally:
        await events.aclose()
    if measured is not None:
        measured(transcript.duration)
    done: Json = {"type": "transcript.text.done", "text": transcript.text}
    if logprobs:
        done["logprobs"] = _logprobs(transcript.segments)
    yield {**done, "usage": transcript.token_usage()}


# --- text to speech ------------------------------------------------------------------------


def media_type(response_format: str) -> str:
    return SPEECH_MEDIA_TYPES[response_format]


def speech_params(body: Json, voices: dict[str, str]) -> Json:
    """The engine's parameters for createSpeech; OpenAI's voice names map to installed
    voices by ``voices`` (the ``speech_voices`` setting)."""
    model_id = body["model"]
    if not body["input"].strip():
        raise bad_request("'input' must not be empty: there is nothing to say.", "input", "invalid_value")
    if body.get("instructions"):
        raise unsupported("instructions", model_id)
    voice = body.get("voice")
    name = voice.get("id") if isinstance(voice, dict) else voice
    if name not in voices:
        choices = ", ".join(f"'{choice}'" for choice in voices)
        raise bad_request(f"Invalid value: '{name}'. Supported values are: {choices}.", "voice", "invalid_value")
    return {
        "input": body["input"],
        "voice": voices[name],
        "speed": float(body.get("speed") or 1.0),
        "format": body.get("response_format") or "mp3",
    }


async def speech_bytes(events: Stream[Json]) -> Stream[bytes]:
    """The encoded audio, chunk by chunk as the worker produces it."""
    try:
        async for event in events:
            if event.get("event") == "audio":
                yield base64.b64decode(event["data"])
    finally:
        await events.aclose()


async def speech_events(events: Stream[Json]) -> Stream[Json]:
    """``speech.audio.delta`` per encoded chunk, then ``speech.audio.done`` with usage."""
    usage: Json = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    try:
        async for event in events:
            if event.get("event") == "audio":
                yield {"type": "speech.audio.delta", "audio": event["data"]}
            elif event.get("event") == "usage":
                frames = math.ceil(event["seconds"] * SPEECH_FRAMES_PER_SECOND)
                phonemes = event.get("phonemes", 0)
                usage = {"input_tokens": phonemes, "output_tokens": frames, "total_tokens": phonemes + frames}
    finally:
        await events.aclose()
    yield {"type": "speech.audio.done", "usage": usage}
