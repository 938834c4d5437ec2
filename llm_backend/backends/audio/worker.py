"""The audio engine process: one audio model, requests in threads, driven over JSON lines.

The protocol is the chat engines' (``backends/llama/worker.py``), so the API process drives
both with the same ``WorkerProcess`` (``backends/llama/worker_process.py``: supervision, restarts,
cancel on disconnect). Requests on stdin, one JSON object per line:

- ``{"id", "op": "transcribe", "params": {"path", "task", "language", "prompt",
  "temperature", "words", "chunking", "alone"}}``: one ``segment`` event per segment
  (``segment``: OpenAI's verbose_json fields, ``words`` when asked), then ``info``
  (``language``, ``duration``) and ``usage`` (``prompt_tokens``); the config's
  ``max_seconds`` bounds the audio, decoded and transcribed ``window_seconds`` at a time; ``alone`` (nothing else computes) runs it on the config's
  ``threads_alone``, else on its ``threads``
- ``{"id", "op": "speak", "params": {"input", "voice", "speed", "format"}}`` (the config's
  ``engine``, hibari or piper, speaking with its ``voice``): events
  ``audio`` (``data``: base64 of the encoded file's next bytes), then ``usage`` (``seconds``)
- ``{"id", "op": "cancel"}``: the request stops at its next segment or sentence

Each request ends with ``done`` (after an ``error`` if it failed). The first line is
``{"event": "ready", "parallel"}``; every later line is a JSON list of events (here one each). Up to ``parallel`` requests run at once, each in a
thread (CTranslate2 and onnxruntime release the GIL while they compute).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..llama.engine.errors import RequestError

if TYPE_CHECKING:  # each is imported by the worker that runs it (its libraries are heavy)
    from .speaker import Speaker
    from .transcriber import Transcriber

ENGINE_FAILED = {"status": 500, "message": "The audio engine failed on this request."}


class Worker:
    def __init__(self, config: dict[str, Any], out) -> None:
        self.out = out
        self.parallel = int(config.get("parallel") or 1)
        self.engine: Transcriber | Speaker
        if config["kind"] == "transcription":
            from .transcriber import Transcriber

            threads_alone = int(config.get("threads_alone") or config["threads"])
            self.engine = Transcriber(
                config["path"], int(config["threads"]), self.parallel, float(config["max_seconds"]),
                float(config["window_seconds"]), threads_alone,
            )
            self.ops = {"transcribe": self.engine.run}
        elif config.get("engine") == "piper":
            from .piper_speaker import PiperSpeaker

            self.engine = PiperSpeaker(int(config["threads"]), config["voice"], config["voice_model"], config["voice_config"])
            self.ops = {"speak": self.engine.run}
        else:
            from .speaker import HibariSpeaker

            self.engine = HibariSpeaker(int(config["threads"]), config["voice"])
            self.ops = {"speak": self.engine.run}
        self.pool = ThreadPoolExecutor(self.parallel)
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    def send(self, message: dict[str, Any]) -> None:
        # A line is a list of events, as the chat engine sends a step's events together.
        self._write([message])

    def _write(self, payload: Any) -> None:
        line = json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            self.out.write(line)
            self.out.flush()

    def handle(self, message: dict[str, Any]) -> None:
        rid, op = message["id"], message["op"]
        if op == "cancel":
            with self._lock:
                flag = self._running.get(rid)
            if flag is None:
                self.send({"id": rid, "event": "done"})  # finished already: the caller waits for it
            else:
                flag.set()  # the request's thread stops at its next step and says done
            return
        flag = threading.Event()
        with self._lock:
            self._running[rid] = flag
        self.pool.submit(self._run, rid, op, message.get("params") or {}, flag)

    def _run(self, rid: str, op: str, params: dict[str, Any], cancelled: threading.Event) -> None:
        try:
            run = self.ops.get(op)
            if run is None:
                raise RequestError(400, f"unknown audio operation {op!r}")
            run(params, lambda event: self.send({"id": rid, **event}), cancelled.is_set)
        except RequestError as exc:
            self.send({"id": rid, "event": "error", "error": exc.as_dict()})
        except Exception:
            traceback.print_exc()
            self.send({"id": rid, "event": "error", "error": ENGINE_FAILED})
        finally:
            with self._lock:
                self._running.pop(rid, None)
            self.send({"id": rid, "event": "done"})

    def serve(self, stdin) -> None:
        self._write({"event": "ready", "parallel": self.parallel})
        for line in stdin:
            self.handle(json.loads(line))
        self.pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    # Group signals are the API process's to act on: it drains, then closes our stdin
    # (backends/llama/worker.py's docstring).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1 << 16)
    os.dup2(2, 1)  # nothing a library prints can corrupt the protocol stream
    Worker(config, protocol).serve(sys.stdin)


if __name__ == "__main__":
    main()
