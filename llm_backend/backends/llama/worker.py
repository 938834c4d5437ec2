"""The engine process: one llama-cpp-python model, driven over JSON lines.

Requests come on stdin (``{"id", "op", "params"}`` or ``{"id", "op": "cancel"}``), events go
to the protocol stream (``{"id", "event": "chunk"|"result"|"error"|"done", ...}``). The
protocol stream is the original stdout; stdout itself is pointed at stderr so that nothing
llama.cpp prints can corrupt it. Requests run one at a time; a cancel is seen between two
decoded tokens.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import threading
import traceback
from typing import Any

import llama_cpp
import numpy as np

from llm_backend.backends.llama import templates

# How llama-cpp-python says a prompt does not fit.
CONTEXT_ERROR = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


class Worker:
    def __init__(self, config: dict[str, Any], out) -> None:
        self.config = config
        self.out = out
        self.out_lock = threading.Lock()
        self.cancelled: set[str] = set()
        self.llm = self._load(embedding=False)
        templates.apply(self.llm, config)
        self._embedder = None

    def _load(self, embedding: bool) -> llama_cpp.Llama:
        return llama_cpp.Llama(
            model_path=self.config["path"],
            n_ctx=self.config["n_ctx"],
            n_threads=self.config.get("n_threads"),
            n_threads_batch=self.config.get("n_threads"),
            # Pooling needs a whole input in one micro-batch.
            n_batch=self.config["n_ctx"] if embedding else self.config.get("n_batch", 512),
            n_ubatch=self.config["n_ctx"] if embedding else self.config.get("n_batch", 512),
            chat_format=self.config.get("chat_format"),
            embedding=embedding,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN if embedding else llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED,
            verbose=False,
        )

    @property
    def embedder(self) -> llama_cpp.Llama:
        # A separate instance: pooling changes what the context computes.
        if self._embedder is None:
            self._embedder = self._load(embedding=True)
        return self._embedder

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")) + "\n"
        with self.out_lock:
            self.out.write(line)
            self.out.flush()

    # --- operations ---

    def chat(self, rid: str, params: dict[str, Any]) -> None:
        self._generate(rid, self.llm.create_chat_completion, params)

    def completion(self, rid: str, params: dict[str, Any]) -> None:
        self._generate(rid, self.llm.create_completion, params)

    def _generate(self, rid: str, create, params: dict[str, Any]) -> None:
        if not params.get("stream"):
            self.send({"id": rid, "event": "result", "data": create(**params)})
            return
        stream = create(**params)
        try:
            for chunk in stream:
                if rid in self.cancelled:
                    break
                self.send({"id": rid, "event": "chunk", "data": chunk})
        finally:
            stream.close()

    def embedding(self, rid: str, params: dict[str, Any]) -> None:
        embedder = self.embedder
        n_ctx = embedder.n_ctx()
        inputs = params["input"]
        tokenized = [
            item if isinstance(item, list) else embedder.tokenize(item.encode(), add_bos=True, special=True)
            for item in inputs
        ]
        for index, tokens in enumerate(tokenized):
            param = f"input[{index}]" if len(inputs) > 1 else "input"
            if len(tokens) > n_ctx:
                raise ContextError(len(tokens), n_ctx, param)
            if not tokens:
                raise RequestError(400, f"'{param}' must not be empty.", param, "invalid_value")
        vectors = [self._embed_tokens(embedder, tokens) for tokens in tokenized]
        self.send({"id": rid, "event": "result", "data": {"vectors": vectors, "n_tokens": sum(map(len, tokenized))}})

    @staticmethod
    def _embed_tokens(embedder: llama_cpp.Llama, tokens: list[int]) -> list[float]:
        # One sequence per decode, so mean pooling never mixes two inputs; token arrays are
        # embedded as given (llama-cpp-python's embed() only takes text).
        n_embd = embedder.n_embd()
        embedder._batch.reset()
        embedder._batch.add_sequence(tokens, 0, True)
        embedder._ctx.kv_cache_clear()
        embedder._ctx.decode(embedder._batch)
        vector = np.array(llama_cpp.llama_get_embeddings_seq(embedder._ctx.ctx, 0)[:n_embd], dtype=np.float64)
        norm = np.linalg.norm(vector)
        return (vector / norm if norm > 0 else vector).tolist()

    def tokenize(self, rid: str, params: dict[str, Any]) -> None:
        tokens = self.llm.tokenize(params["text"].encode(), add_bos=params.get("add_bos", True), special=True)
        self.send({"id": rid, "event": "result", "data": {"tokens": tokens}})

    def handle(self, message: dict[str, Any]) -> None:
        rid = message["id"]
        try:
            getattr(self, message["op"])(rid, message.get("params") or {})
        except RequestError as exc:
            self.send({"id": rid, "event": "error", "error": exc.as_dict()})
        except ValueError as exc:
            overflow = CONTEXT_ERROR.search(str(exc))
            if overflow:
                param = "messages" if message["op"] == "chat" else "prompt"
                error = ContextError(int(overflow[1]), int(overflow[2]), param).as_dict()
            else:
                traceback.print_exc()
                error = {"status": 500, "message": "The engine failed on this request."}
            self.send({"id": rid, "event": "error", "error": error})
        except Exception:
            traceback.print_exc()
            self.send({"id": rid, "event": "error", "error": {"status": 500, "message": "The engine failed on this request."}})
        finally:
            self.cancelled.discard(rid)
            self.send({"id": rid, "event": "done"})

    def serve(self, stdin) -> None:
        work: queue.Queue = queue.Queue()

        def read() -> None:
            for line in stdin:
                message = json.loads(line)
                if message.get("op") == "cancel":
                    self.cancelled.add(message["id"])
                else:
                    work.put(message)
            work.put(None)

        threading.Thread(target=read, daemon=True).start()
        self.send({"event": "ready", "n_ctx": self.llm.n_ctx(), "n_vocab": self.llm.n_vocab()})
        while (message := work.get()) is not None:
            self.handle(message)


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "param": self.param, "code": self.code}


class ContextError(RequestError):
    def __init__(self, n_tokens: int, n_ctx: int, param: str):
        super().__init__(
            400,
            f"This model's maximum context length is {n_ctx} tokens. However, your request "
            f"needs {n_tokens} tokens. Please reduce the length of the input.",
            param,
            "context_length_exceeded",
        )


def main() -> None:
    config = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    Worker(config, protocol).serve(sys.stdin)


if __name__ == "__main__":
    main()
