"""`make bench` (audio row): the local audio models through the service against their
physical ceiling, the same engine in this process on the same cores, side by side.

- Transcription real-time factor (seconds of audio per second of wall time) of the five
  LibriVox clips joined (public domain, Debian's pocketsphinx-testdata; about 27 s): one
  request to the service, then the same file through ``Transcriber`` (the code the audio
  worker runs, same model, threads and options: every core, as the service transcribes
  while nothing else computes) here, alternating, medians. Bar: >= 0.95x.
- Four transcriptions of that file sent at once: their aggregate real-time factor.
- Time to first audio byte of a 3-sentence speech request (streamed mp3), against the time
  this process takes to synthesize and encode the first sentence alone. Bar: <= that + 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_backend.backends.audio.sources import whisper_model_dir  # noqa: E402
from llm_backend.backends.llama.cores import available_cores  # noqa: E402
from llm_backend.settings import Settings  # noqa: E402
from tests.support.audio import librivox_joined  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

THREE_SENTENCES = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well."
)


def served(live: LiveServer, audio: bytes) -> float:
    started = time.perf_counter()
    response = httpx.post(
        live.api + "/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("clips.wav", audio)},
        timeout=600,
    )
    response.raise_for_status()
    return time.perf_counter() - started


def first_byte(client: httpx.Client, live: LiveServer) -> float:
    """Request sent -> first audio byte, on a kept-alive connection (as a client's)."""
    body = {"model": "tts-1", "voice": "alloy", "input": THREE_SENTENCES, "response_format": "mp3"}
    started = time.perf_counter()
    with client.stream("POST", live.api + "/audio/speech", json=body, timeout=120) as response:
        chunks = response.iter_raw()
        next(chunk for chunk in chunks if chunk)
        elapsed = time.perf_counter() - started
        for _ in chunks:
            pass
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    audio, seconds = librivox_joined()
    threads = max(1, available_cores() - 1)  # the audio workers' default (audio_threads)
    alone = available_cores()  # a transcription's when nothing else computes (audio_threads_alone)
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "data"
        env = {"LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_LOG_LEVEL": "WARNING"}
        with LiveServer(Path(workdir), env=env) as live:
            from llm_backend.backends.audio.speaker import HibariSpeaker
            from llm_backend.backends.audio.encoder import StreamEncoder
            from llm_backend.backends.audio.transcriber import Transcriber

            settings = Settings(data_dir=data)
            model_dir = whisper_model_dir(settings.transcription_model_packages, settings.model_cache_dir)
            local = Transcriber(str(model_dir), alone, 1, settings.max_audio_seconds, settings.audio_window_seconds)
            path = Path(workdir) / "clips.wav"
            path.write_bytes(audio)
            served(live, audio)  # loads the service's worker
            local.run({"path": str(path)}, lambda event: None, lambda: False)  # and warms this one
            service_times, local_times = [], []
            for round_ in range(args.rounds):
                order = [("service", lambda: served(live, audio)), ("local", lambda: _local(local, path))]
                for name, run in order if round_ % 2 == 0 else order[::-1]:
                    (service_times if name == "service" else local_times).append(run())
            service_rtf = seconds / statistics.median(service_times)
            local_rtf = seconds / statistics.median(local_times)

            together: list[float] = []
            started = time.perf_counter()
            workers = [threading.Thread(target=lambda: together.append(served(live, audio))) for _ in range(4)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            aggregate_rtf = 4 * seconds / (time.perf_counter() - started)

            speaker = HibariSpeaker(threads, settings.speech_voice)
            first = speaker.tts.split_sentences(THREE_SENTENCES)[0]
            client = httpx.Client()
            first_byte(client, live)
            ttfb, synth = [], []
            for _ in range(max(7, args.rounds)):
                ttfb.append(first_byte(client, live))
                started = time.perf_counter()
                encoder = StreamEncoder("mp3", speaker.sample_rate)
                for samples, _ in speaker.sentences(first, 1.0):
                    encoder.feed(samples)
                synth.append(time.perf_counter() - started)
    ttfb_ms, synth_ms = statistics.median(ttfb) * 1000, statistics.median(synth) * 1000
    print(f"audio: {seconds:.1f} s of LibriVox speech, Whisper base int8 on {alone} thread(s) (4 at once: {threads}), speech on {threads}, {args.rounds} rounds")
    print("| measure | service | in-process ceiling | ratio / margin | bar |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| transcription x realtime | {service_rtf:.2f} | {local_rtf:.2f} | {service_rtf / local_rtf:.3f}x | >= 0.95x |")
    print(f"| 4 concurrent transcriptions, aggregate x realtime | {aggregate_rtf:.2f} | {local_rtf:.2f} (one) | {aggregate_rtf / local_rtf:.2f}x | |")
    print(
        f"| speech: first audio byte of 3 sentences (ms) | {ttfb_ms:.0f} | {synth_ms:.0f} (first sentence) | "
        f"{ttfb_ms - synth_ms:+.0f} ms | <= +50 ms |"
    )


def _local(local, path: Path) -> float:
    started = time.perf_counter()
    local.run({"path": str(path)}, lambda event: None, lambda: False)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
