"""The engine's physical ceiling: llama.cpp decoding N sequences in one batch, in-process.

What llama.cpp's ``batched-bench`` measures, on the load the service is benched with: the
shared load generator's prompts (chat template applied, as the service does), all N
prefilled together, then one ``llama_decode`` per step with one token of every sequence
still running, greedy (llama.cpp's greedy sampler), each sequence ending at max_tokens or
end-of-generation. No processes, no HTTP, no scheduler: nothing a server can do on the same
cores and threads is faster. Reported like the load generator's cells: aggregate tokens/s
(tokens / wall time from the first decode) and TTFT (from the first decode to the first
sampled token, which every sequence gets in the same step).

    .venv/bin/python bench/ceiling.py --n 1,4,8,16 [--threads 1 --threads-batch 2]

``bench/run.py`` drives it as a child process (``--serve``: one JSON command per line on
stdin, one result per line on stdout), so the model stays loaded between its rounds.

``BENCH_MODEL_SETTINGS`` (JSON: a model's settings as its config names them, e.g.
``{"n_gpu_layers": "all", "type_k": "q8_0", "type_v": "q8_0"}``) loads the ceiling with the
llama.cpp parameters the engine derives from them (llama_params.py), and the benches that
start the service give the model the same (``settings_yaml``): bench/gpu_check.sh runs them so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import llama_cpp
from llama_cpp import _internals, _logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_generator  # noqa: E402
from llm_backend.backends.llama.engine import llama_params  # noqa: E402
from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer  # noqa: E402

MODEL_SETTINGS: dict = json.loads(os.environ.get("BENCH_MODEL_SETTINGS") or "{}")


def settings_yaml(indent: str = "    ") -> str:
    """``MODEL_SETTINGS`` as lines of a model's entry in the service's config."""
    return "".join(f"{indent}{key}: {json.dumps(value)}\n" for key, value in MODEL_SETTINGS.items())


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Ceiling:
    """One model and one context with ``max_n`` sequences, as the service's engine makes it."""

    def __init__(self, path: str, n_ctx: int, max_n: int, threads: int, threads_batch: int, n_batch: int,
                 settings: dict | None = None) -> None:
        settings = MODEL_SETTINGS if settings is None else settings
        _logger.set_verbose(False)  # llama.cpp's load-time chatter
        # Without settings, llama.cpp's defaults, as every CPU figure so far was taken.
        model_params = llama_params.model_params(settings) if settings else llama_cpp.llama_model_default_params()
        self.model = _internals.LlamaModel(path_model=path, params=model_params, verbose=False)
        params = llama_params.context_params(settings) if settings else llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * max_n
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = max_n
        params.n_threads, params.n_threads_batch = threads, threads_batch
        params.kv_unified = False
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.greedy = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.greedy, llama_cpp.llama_sampler_init_greedy())
        self.vocab = self.model.vocab
        template = ChatTemplate.of_model(self.model, None)
        tokenizer = Tokenizer(self.model)
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))

        load = load_generator()

        def tokens(prompt: str) -> list[int]:
            text, _, has_bos = template.render(load.build_messages(prompt))
            return tokenizer.tokenize(text, add_bos=add_bos and not has_bos)

        self.prompts = [tokens(prompt) for prompt in load.PROMPTS]

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        batch = self.batch
        for i, (token, pos, seq, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq, logits
        batch.n_tokens = len(items)
        if llama_cpp.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, n: int, max_tokens: int, offset: int = 0) -> dict:
        """N sequences (prompts from ``offset``, rotating as the load generator does) to the end."""
        llama_cpp.llama_memory_clear(self.memory, True)
        prompts = [self.prompts[(offset + i) % len(self.prompts)] for i in range(n)]
        cpu, started = _cpu_seconds(), time.perf_counter()
        # Prefill: every prompt in as few batches as n_batch allows, each one's last token
        # (the one with logits) in the last batch, so that all start in the same step.
        pending = [(token, pos, seq, False) for seq, prompt in enumerate(prompts) for pos, token in enumerate(prompt[:-1])]
        pending += [(prompt[-1], len(prompt) - 1, seq, True) for seq, prompt in enumerate(prompts)]
        last_index = {}
        for start in range(0, len(pending), self.n_batch):
            chunk = pending[start : start + self.n_batch]
            self._decode(chunk)
            for i, (_, _, seq, logits) in enumerate(chunk):
                if logits:
                    last_index[seq] = i
        index = [last_index[seq] for seq in range(n)]
        pos = [len(prompt) for prompt in prompts]
        produced = [0] * n
        running = list(range(n))
        ttft = None
        while running:
            step = []
            for k, seq in enumerate(running):
                token = llama_cpp.llama_sampler_sample(self.greedy, self.ctx, index[k])
                produced[seq] += 1
                if produced[seq] < max_tokens and not llama_cpp.llama_vocab_is_eog(self.vocab, token):
                    step.append((seq, token))
            if ttft is None:
                ttft = time.perf_counter() - started
            if not step:
                break
            running = [seq for seq, _ in step]
            index = list(range(len(step)))
            self._decode([(token, pos[seq], seq, True) for seq, token in step])
            for seq, _ in step:
                pos[seq] += 1
        wall = time.perf_counter() - started
        tokens = sum(produced)
        cpu_ms = (_cpu_seconds() - cpu) * 1000 / tokens
        return {"n": n, "tokens": tokens, "wall_s": wall, "agg_tok_s": tokens / wall, "ttft_s": ttft, "cpu_ms_per_token": cpu_ms}

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self.greedy)
        llama_cpp.llama_batch_free(self.batch)


def serve(ceiling: Ceiling) -> None:
    """Child-process mode: ``{"n", "max_tokens", "offset"}`` per line in, one result per line out."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        print(json.dumps(ceiling.run(command["n"], command["max_tokens"], command.get("offset", 0))), flush=True)


def main() -> None:
    from llm_backend.backends.llama.local_model import default_batch_threads, default_threads
    from llm_backend.backends.llama.sources import resolve_gguf
    from llm_backend.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", help="GGUF (default: the default model's)")
    parser.add_argument("--n", default="1,4,8,16", help="sequences per batch")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048, help="context of each sequence")
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--threads-batch", type=int, default=default_batch_threads())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="take commands on stdin (bench/run.py)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.n.split(",")]
    if args.model_path is None:
        settings = Settings()
        args.model_path = str(resolve_gguf(settings.models[0], settings.model_cache_dir))
    ceiling = Ceiling(args.model_path, args.n_ctx, max(sizes), args.threads, args.threads_batch, args.n_batch)
    if args.serve:
        serve(ceiling)
        return
    ceiling.run(1, 8)  # warm-up
    results: dict[int, list[dict]] = {n: [] for n in sizes}
    for round_ in range(args.rounds):
        for n in sizes if round_ % 2 == 0 else reversed(sizes):
            results[n].append(ceiling.run(n, args.max_tokens, round_ * n))
    print(f"threads {args.threads} (one sequence), {args.threads_batch} (batches); median of {args.rounds} rounds;"
          f" load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{'N':>4} {'agg tok/s':>10} {'TTFT ms':>8} {'tok/seq':>8} {'CPU ms/tok':>11}")
    for n, runs in results.items():
        print(f"{n:>4} {statistics.median(r['agg_tok_s'] for r in runs):10.1f}"
              f" {statistics.median(r['ttft_s'] for r in runs) * 1000:8.0f} {statistics.median(r['tokens'] for r in runs) / n:8.1f}"
              f" {statistics.median(r['cpu_ms_per_token'] for r in runs):11.2f}")
    ceiling.close()


if __name__ == "__main__":
    main()
