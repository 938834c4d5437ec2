"""Speech to text inside an audio worker: faster-whisper (CTranslate2, int8 on CPU).

Bounded by the request's budget, never by what the upload expands to (issue #33: a 21 KB
FLAC of two hours of silence, decoded whole to 16 kHz floats and featurized before the first
segment, took the worker to 6.2 GB): the duration the container declares is checked before
anything is decoded (``max_seconds``: 400 naming ``file``), and the audio is decoded and
transcribed in windows (``window_seconds``, the setting ``audio_window_seconds``: at 120 s
~8 MB of samples and ~60 MB of features), so memory is that of one window at any length
and a header that lies about the length is caught by the samples themselves. A window's
last segment may be cut at its edge: it is held back, and the next window starts where the
last whole segment ended (Whisper's own seek), with the text so far as its prompt. Events:
``info`` (language, duration) once the first window is under way, one ``segment`` per
segment as it is produced, ``info`` again if the decoded length differs from the declared
one, and ``usage``. Cancel is checked between decoded chunks and between segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..llama.engine.errors import RequestError

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.1  # OpenAI's minimum audio length
# The text of earlier windows given as the next one's prompt (Whisper's prompt holds 224 tokens).
CONTEXT_CHARS = 400
# OpenAI's temperature 0: start at 0 and raise it when the output fails the checks
# (compression ratio, average log probability), Whisper's own fallback.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def unreadable() -> RequestError:
    return RequestError(400, "Audio file might be corrupted or unsupported", "file", "invalid_value")


def too_long(seconds: float, limit: float) -> RequestError:
    return RequestError(
        400,
        f"Audio file is too long: it is longer than {limit:g} seconds, the most this server transcribes "
        f"(max_audio_seconds){'' if math.isinf(seconds) else f'; it lasts {seconds:.1f} seconds'}.",
        "file",
        "audio_too_long",
    )


def declared_seconds(container: Any) -> float | None:
    """The length the container says, from its header or its audio stream's, if any."""
    if container.duration:
        return container.duration / 1_000_000
    stream = container.streams.audio[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def samples(path: str, limit: float, cancelled: Callable[[], bool]) -> Iterator[np.ndarray]:
    """The upload as 16 kHz mono float32, chunk by chunk as it decodes; 400 naming ``file``
    when it is not audio or lasts longer than ``limit`` seconds (declared or decoded)."""
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError):
        raise unreadable() from None
    with container:
        if not container.streams.audio:
            raise unreadable()
        declared = declared_seconds(container)
        if declared is not None and declared > limit:
            raise too_long(declared, limit)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        budget = int(limit * SAMPLE_RATE) + SAMPLE_RATE  # a second of slack for the codec's padding
        decoded = 0
        try:
            for frame in container.decode(audio=0):
                if cancelled():
                    return
                frame.pts = None  # resampled as a continuous stream whatever the timestamps say
                for piece in resampler.resample(frame):
                    chunk = piece.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                    decoded += chunk.shape[0]
                    if decoded > budget:  # the header lied, or said nothing
                        raise too_long(math.inf, limit)
                    yield chunk
            for piece in resampler.resample(None):
                yield piece.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
        except (av.error.FFmpegError, ValueError, IndexError):
            raise unreadable() from None


def windows(chunks: Iterator[np.ndarray], seconds: float) -> Iterator[tuple[np.ndarray, bool]]:
    """``chunks`` gathered in windows of ``seconds``, with whether each is the last."""
    size = int(seconds * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += chunk.shape[0]
        while held >= size:
            joined = np.concatenate(pending)
            yield joined[:size], False
            pending, held = [joined[size:]], joined.shape[0] - size
    yield (np.concatenate(pending) if pending else np.zeros(0, np.float32)), True


class Transcriber:
    """``threads`` for a transcription beside other work, ``threads_alone`` for one asked to
    run ``alone`` (nothing else computing: a voice turn's, typically). CTranslate2 fixes a
    model's threads when it loads it, so the two counts are two copies of the model (about
    120 MB more); one when they are equal."""

    def __init__(
        self, model_dir: str, threads: int, parallel: int, max_seconds: float, window_seconds: float,
        threads_alone: int | None = None,
    ) -> None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        from .whisper import Whisper

        self.languages = frozenset(_LANGUAGE_CODES)
        self.max_seconds = max_seconds
        self.window_seconds = window_seconds
        self.model = Whisper(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=parallel)
        self.alone = self.model
        if threads_alone and threads_alone != threads:
            self.alone = Whisper(model_dir, device="cpu", compute_type="int8", cpu_threads=threads_alone)

    def run(self, params: dict[str, Any], emit: Callable[[dict], None], cancelled: Callable[[], bool]) -> None:
        language = params.get("language") or None
        if language is not None and language not in self.languages:
            raise RequestError(
                400,
                f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
                "language",
                "invalid_language_format",
            )
        temperature = params.get("temperature") or 0
        chunking = params.get("chunking")
        options = {
            "task": params.get("task", "transcribe"),
            "temperature": FALLBACK_TEMPERATURES if temperature == 0 else [temperature],
            "word_timestamps": bool(params.get("words")),
            "vad_filter": chunking is not None,
            "vad_parameters": _vad_parameters(chunking),
            "beam_size": 5,
        }
        model = self.alone if params.get("alone") else self.model
        user_prompt = params.get("prompt") or None
        prompt = user_prompt
        offset = 0.0  # where the buffer starts in the whole audio, in seconds
        buffer = np.zeros(0, np.float32)
        segment_id = 0
        certainty = 1.0  # of the language: given, or as detected
        for window, last in windows(samples(params["path"], self.max_seconds, cancelled), self.window_seconds):
            buffer = np.concatenate([buffer, window])
            if cancelled():
                return
            if last and offset == 0 and buffer.shape[0] < MIN_SECONDS * SAMPLE_RATE:
                raise RequestError(
                    400, f"Audio file is too short. Minimum audio length is {MIN_SECONDS} seconds.", "file", "audio_too_short"
                )
            if buffer.shape[0] == 0:  # the audio ended exactly at the last window's edge
                break
            segments, info = model.transcribe(buffer, language=language, initial_prompt=prompt, **options)
            if language is None:
                certainty = info.language_probability
            language = info.language  # detected once, on the first window, then held
            shown: list[Any] = []
            for segment in segments:
                if cancelled():
                    return
                if shown:  # the one before this is whole: out it goes
                    segment_id += 1
                    emit({"event": "segment", "segment": _segment(shown[-1], segment_id, offset)})
                shown.append(segment)
            consumed = buffer.shape[0]
            held = shown[-1] if shown else None
            # A window's last segment may run into its edge: unless the audio ends here, it is
            # transcribed again with the next window, from where it started. Only a short tail
            # is held so (the buffer stays under 1.5 windows); else it goes out as it is.
            if held is not None and not last and len(shown) > 1 and buffer.shape[0] / SAMPLE_RATE - held.start < self.window_seconds / 2:
                consumed = int(held.start * SAMPLE_RATE)
            elif held is not None:
                segment_id += 1
                emit({"event": "segment", "segment": _segment(held, segment_id, offset)})
            if not last:
                emitted = shown if consumed == buffer.shape[0] else shown[:-1]
                prompt = ("".join(segment.text for segment in emitted) or prompt or "")[-CONTEXT_CHARS:] or None
                offset += consumed / SAMPLE_RATE
                buffer = buffer[consumed:]
        total = offset + buffer.shape[0] / SAMPLE_RATE
        emit({"event": "info", "language": language or "en", "language_probability": round(certainty, 3), "duration": round(total, 3)})
        prompt_tokens = len(self.model.hf_tokenizer.encode(user_prompt, add_special_tokens=False).ids) if user_prompt else 0
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


def _segment(segment: Any, number: int, offset: float) -> dict[str, Any]:
    """A segment as verbose_json shows it: ``number`` counts from 1 over the whole audio,
    ``offset`` (seconds) is where its window started."""
    shown = {
        "id": number - 1,
        "seek": segment.seek + round(offset * 100),  # in 10 ms frames, as Whisper counts
        "start": round(segment.start + offset, 3),
        "end": round(segment.end + offset, 3),
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
                "start": round(word.start + offset, 3),
                "end": round(word.end + offset, 3),
                "logprob": math.log(max(word.probability, 1e-12)),
            }
            for word in segment.words
        ]
    return shown
