"""`make bench` (Responses rows): what the Responses layer costs over chat completions, and
what the prompt cache saves a chain.

Starts this service with the default local model and, at concurrency 1 with greedy
decoding, sends each prompt of the shared set (``PROMPTS`` of ``openai_bench.py``) three
ways back to back, the order rotating per round: a streamed chat completion, a streamed
response (``store`` on, as clients send it by default) and a streamed response with
``store: false``. Per pair it takes TTFT (request sent -> first text delta) and decode
tokens/s (output tokens after the first / time from the first to the last delta), and
reports medians and the median of the per-pair differences (ms) and ratios: the issue's bar
is at most +2 ms TTFT and at least 0.97x tokens/s for Responses.

Each prompt is put into the engine's prefix cache just before its three requests (not
recorded), so that none of them pays the prefill: on this shared 2-core machine a prefill
takes seconds under load, a noise far above the bar.

Then a 3-turn chain: the third turn's TTFT with ``previous_response_id`` (the shared
prefix is in the engine's prompt cache) against the same three turns sent as one new
input behind a unique first line (a cold prefix of the same length), with the
``cached_tokens`` each reports.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_generator  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402


@functools.cache
def prompts() -> list[str]:
    return list(load_generator().PROMPTS)


def _sse_data(response: httpx.Response):
    for line in response.iter_lines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data != "[DONE]":
                yield json.loads(data)


class Timing:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.tokens = 0
        self.cached = 0

    def delta(self) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.started) * 1000

    @property
    def tokens_per_second(self) -> float:
        return (self.tokens - 1) / (self.last - self.first) if self.tokens > 1 and self.last > self.first else 0.0


def chat(client: httpx.Client, model: str, prompt: str, max_tokens: int) -> Timing:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing = Timing()
    with client.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        for chunk in _sse_data(response):
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or []):
                timing.delta()
            if chunk.get("usage"):
                timing.tokens = chunk["usage"]["completion_tokens"]
    return timing


def respond(client: httpx.Client, model: str, input_value, max_tokens: int, **fields) -> tuple[Timing, dict]:
    body = {"model": model, "input": input_value, "temperature": 0, "max_output_tokens": max_tokens, "stream": True, **fields}
    timing = Timing()
    final: dict = {}
    with client.stream("POST", "/responses", json=body) as response:
        response.raise_for_status()
        for event in _sse_data(response):
            if event["type"] == "response.output_text.delta":
                timing.delta()
            elif event["type"] in ("response.completed", "response.incomplete"):
                final = event["response"]
                timing.tokens = final["usage"]["output_tokens"]
                timing.cached = final["usage"]["input_tokens_details"]["cached_tokens"]
    return timing, final


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def overhead(client: httpx.Client, model: str, rounds: int, max_tokens: int) -> str:
    kinds = {
        "chat": lambda prompt: chat(client, model, prompt, max_tokens),
        "responses": lambda prompt: respond(client, model, prompt, max_tokens)[0],
        "responses store:false": lambda prompt: respond(client, model, prompt, max_tokens, store=False)[0],
    }
    names = list(kinds)
    runs: dict[str, list[Timing]] = {name: [] for name in names}
    for prompt in prompts()[:2]:  # warm-up, not recorded
        for name in names:
            kinds[name](prompt)
    for round_ in range(rounds):
        for prompt in prompts():
            # The prompt into the engine's prefix cache first (not recorded), so that none
            # of the three pays its prefill: the TTFTs compare what the layers add.
            chat(client, model, prompt, 1)
            order = names[round_ % len(names):] + names[: round_ % len(names)]
            for name in order:
                runs[name].append(kinds[name](prompt))
    lines = [
        f"{'':24}{'TTFT ms (median)':>18}{'tok/s (median)':>16}{'TTFT - chat, ms':>18}{'tok/s / chat':>14}",
    ]
    for name in names:
        pairs = list(zip(runs[name], runs["chat"]))
        lines.append(
            f"{name:24}{median([t.ttft_ms for t in runs[name]]):>18.1f}{median([t.tokens_per_second for t in runs[name]]):>16.1f}"
            f"{median([a.ttft_ms - b.ttft_ms for a, b in pairs]):>18.2f}"
            f"{median([a.tokens_per_second / b.tokens_per_second for a, b in pairs if b.tokens_per_second]):>14.3f}"
        )
    lines.append(f"({rounds} rounds x {len(prompts())} prompts, max_tokens {max_tokens}, temperature 0, concurrency 1)")
    return "\n".join(lines)


TURNS = [
    "My name is Ann and I keep bees in a small garden near the sea. Tell me about bees.",
    "What do my bees need in winter?",
    "And what is my name?",
]


def chain(client: httpx.Client, model: str, rounds: int, max_tokens: int) -> str:
    warm, cold = [], []
    for _ in range(rounds):
        previous, items = None, []
        # A new first line per chain: a chain's third turn finds only its own turns cached.
        turns = [f"(Chat {uuid.uuid4().hex[:8]}.) {TURNS[0]}", *TURNS[1:]]
        for turn in turns:
            fields = {"previous_response_id": previous} if previous else {}
            timing, final = respond(client, model, turn, max_tokens, **fields)
            previous = final["id"]
            items += [{"role": "user", "content": turn}, {"role": "assistant", "content": final["output"][0]["content"][0]["text"]}]
        warm.append(timing)
        # The same three turns as one new input, behind a line no earlier prompt had.
        fresh = [{"role": "developer", "content": f"Session {uuid.uuid4().hex}."}, *items[:-1]]
        cold.append(respond(client, model, fresh, max_tokens, store=False)[0])
    lines = [f"{'third turn of a 3-turn chain':38}{'TTFT ms (median)':>18}{'cached tokens':>15}"]
    for name, runs in (("previous_response_id (prompt cache)", warm), ("cold prefix (same turns, new input)", cold)):
        lines.append(f"{name:38}{median([t.ttft_ms for t in runs]):>18.1f}{median([t.cached for t in runs]):>15.0f}")
    lines.append(f"({rounds} chains, max_output_tokens {max_tokens} per turn)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-responses")
    out.mkdir(parents=True)
    load_before = Path("/proc/loadavg").read_text().strip()
    with LiveServer(out / "server") as live, httpx.Client(base_url=live.api, timeout=300) as client:
        model = client.get("/models").json()["data"][0]["id"]
        table = overhead(client, model, args.rounds, args.max_tokens)
        chains = chain(client, model, args.chains, 48)
    report = "\n".join(
        [
            f"# Responses vs chat completions, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {model})",
            f"- load average before: {load_before}; after: {Path('/proc/loadavg').read_text().strip()}",
            "",
            "```",
            table,
            "",
            chains,
            "```",
        ]
    )
    (out / "results.md").write_text(report)
    print(report)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
