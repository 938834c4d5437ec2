"""Speech to text inside an audio worker: faster-whisper (CTranslate2, int8 on CPU).

``transcribe`` decodes the upload with PyAV (through faster-whisper), then emits an ``info``
event (language, duration) and one ``segment`` event per segment as the decoder produces
them, so a stream's first text goes out after the first 30-second window, not the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..llama.engine.errors import RequestError

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.1  # OpenAI's minimum audio length
# OpenAI's temperature 0: start at 0 and raise it when the output fails the checks
# (compression ratio, average log probability), Whisper's own fallback.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def unreadable() -> RequestError:
    return RequestError(400, "Audio file might be corrupted or unsupported", "file", "invalid_value")


def decode(path: str):
    """The upload as 16 kHz mono float32; 400 naming ``file`` when it is not audio."""
    import av
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(path, sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration):
        raise unreadable() from None
    if audio.shape[0] < MIN_SECONDS * SAMPLE_RATE:
        raise RequestError(
            400, f"Audio file is too short. Minimum audio length is {MIN_SECONDS} seconds.", "file", "audio_too_short"
        )
    return audio


class Transcriber:
    def __init__(self, model_dir: str, threads: int, parallel: int) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        self.languages = frozenset(_LANGUAGE_CODES)
        self.model = WhisperModel(
            model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=parallel
        )

    def run(self, params: dict[str, Any], emit: Callable[[dict], None], cancelled: Callable[[], bool]) -> None:
        language = params.get("language") or None
        if language is not None and language not in self.languages:
            raise RequestError(
                400,
                f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
                "language",
                "invalid_language_format",
            )
        audio = decode(params["path"])
        temperature = params.get("temperature") or 0
        chunking = params.get("chunking")
        segments, info = self.model.transcribe(
            audio,
            task=params.get("task", "transcribe"),
            language=language,
            initial_prompt=params.get("prompt") or None,
            temperature=FALLBACK_TEMPERATURES if temperature == 0 else [temperature],
            word_timestamps=bool(params.get("words")),
            vad_filter=chunking is not None,
            vad_parameters=_vad_parameters(chunking),
            beam_size=5,
        )
        emit({"event": "info", "language": info.language, "duration": round(info.duration, 3)})
        for segment in segments:
            if cancelled():
                return
            emit({"event": "segment", "segment": _segment(segment)})
        prompt = params.get("prompt")
        prompt_tokens = len(self.model.hf_tokenizer.encode(prompt, add_special_tokens=False).ids) if prompt else 0
        emit({"event": "usage", "prompt_tokens": prompt_tokens})


def _vad_parameters(chunking: Any) -> dict[str, Any] | None:
    """``chunking_strategy``: ``auto`` is Silero VAD's defaults; ``server_vad`` sets them."""
    if not isinstance(chunking, dict):
        return None
    parameters = {}
    if "threshold" in chunking:
        parameters["threshold"] = float(chunking["threshold"])
    if "silence_duration_ms" in chunking:
        parameters["min_silence_duration_ms"] = int(chunking["silence_duration_ms"])
    if "prefix_padding_ms" in chunking:
        parameters["speech_pad_ms"] = int(chunking["prefix_padding_ms"])
    return parameters


def _segment(segment: Any) -> dict[str, Any]:
    shown = {
        "id": segment.id - 1,
        "seek": segment.seek,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }
    if segment.words is not None:
        shown["words"] = [
            {
                "word": word.word,
                "start": round(word.start, 3),
                "end": round(word.end, 3),
                "logprob": math.log(max(word.probability, 1e-12)),
            }
            for word in segment.words
        ]
    return shown
