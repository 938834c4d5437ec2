"""The engine process: one model, many concurrent requests, driven over JSON lines.

Protocol. Requests come on stdin, one JSON object per line:

- ``{"id", "op": "chat"|"completion", "params"}``: generate; ``params`` are the engine's
  (``messages`` with ``tools`` and ``tool_choice``, or ``prompt``, ``n``, ``max_tokens``, ``temperature``, ``top_p``, ``seed``,
  ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``stop``, ``grammar``,
  ``logprobs``, ``top_logprobs``, ``echo``, ``prediction``: text whose tokens are verified
  as drafts, and ``structure``: what the output must parse as, turned into ``grammar`` here,
  see grammar.py)
- ``{"id", "op": "embedding", "params": {"input": [...], "dimensions": int | null}}``
- ``{"id", "op": "count", "params": {"messages": [...], "tools", "tool_choice"}}``: the prompt's token count
- ``{"id", "op": "cancel"}``: drop that request between two decoding steps

Events go to the protocol stream as JSON objects, each with the request ``id``; one line, a
JSON array, holds all the events of one ``llama_decode`` (a token for every generating
sequence, or a prompt chunk), with what the worker's loop added before it (answers to
``count`` and ``embedding``, errors, the ``stats`` due), so the API process reads, parses and
wakes once per decode, not once per token; an idle worker writes a line per pass of its loop.
With the overlapped step (engine/batching.py) a decode's line is written while the next
decode computes:

- ``prompt`` (``prompt_tokens``): admitted to a sequence, prefill starts
- ``echo`` (``text``, ``logprobs`` or null): the prompt, once prefilled, when ``echo`` was set
- ``delta`` (``index``, ``text``, optional ``logprobs`` list, optional ``finish_reason``):
  text of choice ``index``; the one with ``finish_reason`` is that choice's last
- ``usage`` (``prompt_tokens``, ``cached_tokens``: of those, found in the KV cache,
  ``completion_tokens`` summed over choices; with a prediction ``accepted_prediction_tokens``
  and ``rejected_prediction_tokens``, the latter counted in ``completion_tokens``)
- ``result`` (``data``): the whole answer of a non-generating op (embedding; count:
  ``{"prompt_tokens"}``)
- ``error`` (``error``: status, message, param, code)
- ``done``: nothing more will come for this id (sent after a cancel too)

Without an ``id``, ``stats`` (``decoding``: sequences decoding, ``running``: requests
decoding, ``waiting``, ``kv_used`` / ``kv_size``: KV cells holding tokens / all, ``kv_active``:
of those, the cells of sequences serving a request, ``tokens_per_second``: tokens generated per
second of decoding since the last stats; totals since the worker started: ``requests``, ``prompt_tokens``, ``reused_tokens``:
of those, found in the KV cache, ``cache_hits``: requests that found some,
``generated_tokens``, ``drafted_tokens`` and ``accepted_drafts``, ``pool_stops``: answers
ended with ``length`` past their share when the KV pool ran out (engine/admission.py), ``decode_seconds``): at most once per ``STATS_INTERVAL`` while busy, and when it goes idle.
The API process keeps the last one for the metrics.

The first line is the object ``{"event": "ready", "n_ctx", "kv_size", "parallel", "gpu_offload", "tool_format",
"kv_bytes_per_sequence", "kv_bytes", "model_bytes", "max_answer", "max_tokens_ceiling"}`` (the window, the KV pool's cells; whether this llama.cpp build can offload
to a GPU at all; the model's tool-call format, tool_formats/; what the model takes in memory,
engine/llama_params.py, which the API process's watchdog adds to the worker's allowance; the longest answer and the
largest max_tokens fitted to it, engine/submission.py). The protocol stream is the
original stdout; stdout itself is pointed at stderr so nothing llama.cpp prints can corrupt it.

The worker ignores SIGINT and SIGTERM: those sent to the whole process group (Ctrl-C in a
terminal, systemd's default ``KillMode=control-group``) are the API process's to act on. It
drains its requests, then closes the worker's stdin, and the worker ends; before, the
workers died at once, their requests in flight failed and the API process started new ones
during its own shutdown (0.6 s of a stop). A worker whose API process is gone sees stdin end
too. SIGKILL still stops it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import Any

from .engine.batching import Engine
from .engine.embeddings import Embedder
from .engine.errors import RequestError
from .engine.llama_params import SHARE, gpu_offload, model_memory
from .grammar import GrammarError, grammar_for
from .schema_bounds import longest_token_bytes

ENGINE_FAILED = {"status": 500, "message": "The engine failed on this request."}
# Seconds between two stats events of a busy worker: one short line, about 20 µs to build.
STATS_INTERVAL = 1.0


def structured_output_grammar(structure: dict[str, Any] | None, tool_format: Any = None, reach: int | None = None) -> str | None:
    """The GBNF grammar for a request's ``structure`` (JSON, a schema, tool calls in the
    model's ``tool_format``); ``reach``: the most characters its answer can hold."""
    try:
        return grammar_for(structure, tool_format, reach)
    except GrammarError as exc:
        if exc.param:
            message = str(exc)
            raise RequestError(400, f"{message[:1].upper()}{message[1:]}.", exc.param, exc.code or "invalid_value") from None
        kind = structure.get("kind") if structure else None
        param = {"tool_calls": "tools", "gbnf": "grammar"}.get(kind or "", "response_format")
        raise RequestError(400, f"'{param}': {exc}.", param, "invalid_value") from None


class Worker:
    def __init__(self, config: dict[str, Any], out) -> None:
        self.out = out
        self.config = config
        self.engine = Engine(config, self.send, self.flush)
        self.embedder = Embedder(
            self.engine.model,
            self.engine.tokenizer,
            # Its own context, made on first use: the configured window of a sequence with cells
            # of its own, else the old 2048 (a shared pool's window is an agent's turn, 32k for
            # the model served without a config; an embedding context as long as an 8k window
            # takes hundreds of MB to compute).
            min(self.engine.n_ctx, SHARE if config.get("kv_shared") else int(config.get("n_ctx") or SHARE)),
            int(config.get("n_threads") or 1),
            int(config.get("n_threads_batch") or config.get("n_threads") or 1),
        )
        self.inbox: queue.Queue = queue.Queue()
        self.outbox: list[dict[str, Any]] = []  # events of this pass of the loop, sent by flush()
        self._stats_at = time.monotonic()
        self._stats_generated = 0
        self.decode_seconds = 0.0  # time spent in decoding steps since the start
        self._stats_decode = 0.0
        self._stats_busy = False
        self._stats_requests = 0
        self._longest_token: int | None = None

    def reach(self, max_tokens: int | None) -> int:
        """The most characters an answer of ``max_tokens`` can hold (schema_bounds.py): its
        tokens, within the context, times the longest token (measured once, ~0.1 s)."""
        if self._longest_token is None:
            tokenizer = self.engine.tokenizer
            self._longest_token = longest_token_bytes(tokenizer.vocab, tokenizer.n_vocab)
        return min(max_tokens or self.engine.n_ctx, self.engine.n_ctx) * self._longest_token

    def report_stats(self) -> None:
        """A ``stats`` event when one is due: each second while busy, and on going idle."""
        now = time.monotonic()
        busy = self.engine.busy
        finished = self.engine.totals["requests"] != self._stats_requests  # a request ended in one step
        if busy and now - self._stats_at < STATS_INTERVAL or not busy and not self._stats_busy and not finished:
            return
        stats = self.engine.stats()
        decoding = self.decode_seconds - self._stats_decode
        generated = stats["generated_tokens"] - self._stats_generated
        rates = {
            "tokens_per_second": round(generated / decoding, 2) if decoding > 0 else 0.0,
            "decode_seconds": round(self.decode_seconds, 4),
        }
        self._stats_at, self._stats_generated, self._stats_busy = now, stats["generated_tokens"], busy
        self._stats_decode = self.decode_seconds
        self._stats_requests = stats["requests"]
        self.send({"event": "stats", **stats, **rates})

    def send(self, event: dict[str, Any]) -> None:
        self.outbox.append(event)

    def flush(self) -> None:
        """The events so far as one line (those of one decode, or of an idle pass of the loop)."""
        if self.outbox:
            self.out.write(json.dumps(self.outbox, separators=(",", ":"), ensure_ascii=False) + "\n")
            self.outbox.clear()
            self.out.flush()

    def _read(self, stdin) -> None:
        media = self.engine.media
        for line in stdin:
            message = json.loads(line)
            if media is not None and message.get("op") in ("chat", "count"):
                media.frame_ahead((message.get("params") or {}).get("messages"))  # off the step's thread
            self.inbox.put(message)
        self.inbox.put(None)

    def handle(self, message: dict[str, Any]) -> None:
        rid, op = message["id"], message["op"]
        if op == "cancel":
            # "done" even for an id the engine no longer knows: the caller waits for it.
            self.engine.cancel(rid)
            self.send({"id": rid, "event": "done"})
            return
        try:
            if op in ("chat", "completion"):
                params = message.get("params") or {}
                structure = params.pop("structure", None)
                reach = self.reach(params.get("max_tokens")) if structure else None
                params["grammar"] = structured_output_grammar(structure, self.engine.template.tool_format, reach)
                self.engine.submit(rid, op, params)
                return  # the engine sends the rest, ending with "done"
            if op == "embedding":
                params = message["params"]
                vectors = self.embedder.embed(params["input"], params.get("dimensions"))
                self.send({"id": rid, "event": "result", "data": vectors})
            elif op == "count":
                count = message["params"]
                prompt, _, _, _ = self.engine.chat_prompt(
                    count["messages"], count.get("tools"), count.get("tool_choice"), tenant=str(count.get("tenant") or "")
                )
                self.send({"id": rid, "event": "result", "data": {"prompt_tokens": len(prompt)}})
            else:
                raise RequestError(400, f"unknown engine operation {op!r}")
        except RequestError as exc:
            self.send({"id": rid, "event": "error", "error": exc.as_dict()})
        except Exception:
            traceback.print_exc()
            self.send({"id": rid, "event": "error", "error": ENGINE_FAILED})
        self.send({"id": rid, "event": "done"})

    def serve(self, stdin) -> None:
        threading.Thread(target=self._read, args=(stdin,), daemon=True).start()
        hello = {
            "event": "ready", "n_ctx": self.engine.n_ctx, "parallel": self.engine.parallel, "gpu_offload": gpu_offload(),
            "tool_format": self.engine.template.tool_format.name,
            "reasoning_format": getattr(self.engine.template.reasoning, "name", None),
            "kv_size": self.engine.pool,
            # The longest answer and the largest max_tokens fitted to it (engine/submission.py).
            "max_answer": self.engine.submission.max_answer, "max_tokens_ceiling": self.engine.submission.ceiling,
            **model_memory(self.engine.model, self.config, self.engine.pool, self.engine.n_ctx),
        }
        self.out.write(json.dumps(hello) + "\n")
        self.out.flush()
        while True:
            # Idle: sleep until a request comes. Busy: take what has come, then decode a step.
            try:
                message = self.inbox.get(block=not self.engine.busy)
                while True:
                    if message is None:
                        return
                    self.handle(message)
                    message = self.inbox.get_nowait()
            except queue.Empty:
                pass
            if self.engine.busy:
                self.report_stats()  # if due, with the step's first decode: one write a decode (the docstring)
                started = time.perf_counter()
                try:
                    self.engine.step()  # writes each decode's events (``flush``), or its own when it decodes none
                except Exception:
                    traceback.print_exc()
                    self.engine.fail_all(ENGINE_FAILED)
                self.decode_seconds += time.perf_counter() - started
            if not self.engine.busy:
                self.report_stats()
                self.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the API process stops us (the docstring)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = json.loads(sys.argv[1])
    from llama_cpp import _logger

    _logger.set_verbose(False)  # llama.cpp's load-time chatter; errors still reach stderr
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1 << 16)
    os.dup2(2, 1)
    worker = Worker(config, protocol)
    worker.serve(sys.stdin)
    # Ended (stdin closed, nothing in flight): what outlives the process, the prefixes being
    # saved to disk, is written; then it leaves without freeing the model, the KV pool and the
    # interpreter piece by piece, which the OS takes back at once (that cost 0.12-0.16 CPU-s
    # and ~0.4 s of every stop or restart on 2 cores).
    worker.engine.close()
    protocol.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
