"""`make bench` (issue #57 item 4): what a long agent request costs the API process, beside a chat.

The API process's own CPU (its threads' on-CPU time from /proc/<pid>/task/*/schedstat, in
nanoseconds: utime and stime tick at 10 ms, as much as the figure measured; the engine's
worker processes are not counted) per request, on the packaged model served as
docs/MODELS.md's "agents" config says (bench/codex_session.py's), each request streamed:

- a chat completion of ``OUTPUT`` tokens (a prompt that runs long, greedy, ``max_tokens``);
- a later turn of the recorded Codex session (bench/data/codex_session/, turns 2-6, 44-46 KB
  and about 9k tokens each, its instructions and tools), at most ``OUTPUT`` tokens of answer.

Both stream at most the same number of output tokens (the turns end sooner where the model
calls a tool: their counts are reported). Each pair is repeated (medians reported), after a
warm-up that prefills the session once (turn 1) and runs each path once. Bar: a later
turn's CPU at most 1.5x the chat's.

What a request costs the API process has three parts, and the report separates the third:
its own handling (parsing, validation, translation to chat, the engine's parameters, the
message to the worker: the part sized by a 40 KB body), one event sent per output delta
(a socket write each), and what the process does on timers while any request is in flight
(the worker's memory watch reads /proc 20 times a second: worker_process.py), which grows
with the request's seconds, not its size: on a loaded 2-core machine a later turn waits
seconds for its prefill, a GPU answers it in 20-30 ms. That rate is measured (a 1-token chat
on a long new prompt against a short one) and the medians are given again less it.

    .venv/bin/python bench/api_cpu.py [--rounds 3] [--profile]

``--profile`` also records the API process with py-spy (``pip install py-spy``: not a
dependency of the service) during the later turns, and reports its top frames; the raw
samples are written beside the report (``later-turns.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceiling import settings_yaml  # noqa: E402
from bench.codex_session import CONFIG, MODEL, N_CTX, THREADS, turns  # noqa: E402
from bench.openai_runs import finish, load_average  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

OUTPUT = 100
# The long prompt of the in-flight measure: about 800 new tokens, seconds of prefill here.
LONG_WORDS = 200
STORY = "Write a long story, chapter after chapter, about a lighthouse keeper and the ships she guides home."


def cpu_ns(pid: int) -> dict[int, int]:
    """The on-CPU nanoseconds of each thread ``pid`` has now."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return threads


def used_ms(before: dict[int, int], after: dict[int, int]) -> float:
    """The CPU the threads alive at the end used since ``before`` (a thread that ended
    meanwhile takes its time with it: the pools' threads live on, so that is rare)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e6


def streamed(client: httpx.Client, path: str, body: dict) -> int:
    """Send ``body`` streamed and read its events to the end; the output tokens it reports."""
    tokens = 0
    with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.read().decode()[:500]}")
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or (event.get("response") or {}).get("usage") or {}
            tokens = usage.get("completion_tokens") or usage.get("output_tokens") or tokens
    return tokens


def chat_body(n: int) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": f"({n}) {STORY}"}], "max_tokens": OUTPUT,
            "stream": True, "temperature": 0, "stream_options": {"include_usage": True}}


def turn_body(body: dict) -> dict:
    return {**body, "model": MODEL, "max_output_tokens": OUTPUT}


def measured(pid: int, client: httpx.Client, path: str, body: dict) -> tuple[float, int, float]:
    """The API process's CPU (ms) for one request, from before it is sent until its stream
    ended and the process went quiet (its access log and bookkeeping after the last event);
    the output tokens; the seconds it took."""
    before, started = cpu_ns(pid), time.perf_counter()
    tokens = streamed(client, path, body)
    time.sleep(0.05)
    return used_ms(before, cpu_ns(pid)), tokens, time.perf_counter() - started


def idle_ms(pid: int, seconds: float = 2.0) -> float:
    """What the process uses per second with no request (its timers, its pollers)."""
    before = cpu_ns(pid)
    time.sleep(seconds)
    return used_ms(before, cpu_ns(pid)) / seconds


def in_flight_rate(pid: int, client: httpx.Client) -> tuple[float, float]:
    """The CPU (ms) a request costs the process per second it is in flight, whatever it asks
    (what the process does on a timer while an engine works: a chat of one token on a long
    new prompt, its prefill's seconds, set against a short one's); and the short chat's CPU."""
    def chat(words: int, n: int) -> dict:
        text = " ".join(f"w{n}x{i}" for i in range(words))
        return {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 1, "stream": True,
                "temperature": 0}
    short = [measured(pid, client, "/chat/completions", chat(10, n)) for n in range(3)]
    long = [measured(pid, client, "/chat/completions", chat(LONG_WORDS, n)) for n in range(3)]
    short_ms, short_s = statistics.median(m for m, _, _ in short), statistics.median(w for _, _, w in short)
    rates = [(ms - short_ms) / max(1e-3, wall - short_s) for ms, _, wall in long]
    return statistics.median(rates), short_ms


def profile(pid: int, client: httpx.Client, bodies: list[dict], out: Path) -> str:
    """py-spy recording the API process over ``bodies`` (each sent twice): its top frames."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "py-spy not installed (pip install py-spy): no profile"
    raw = out / "later-turns.txt"
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "1000", "--format", "raw", "--output", str(raw),
                                 "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    for _ in range(2):
        for body in bodies:
            streamed(client, "/responses", body)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(30)
    return summarise(raw)


def summarise(raw: Path, top: int = 20) -> str:
    """A py-spy raw (collapsed) file as the shares of busy samples: by leaf (self), and by
    the service's own frames (inclusive); the loop waiting in ``select`` left out."""
    leaves: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        calls = stack.split(";")
        if calls[-1].startswith("Runner.run") or "select (selectors.py" in stack or "wait (threading.py" in stack:
            continue  # idle: the loop in epoll, a pool's thread waiting for work
        leaves[calls[-1]] += int(count)
        frames.update({call: int(count) for call in set(calls) if "llm_backend/" in call and "cli/main.py" not in call})
    total = sum(leaves.values())
    if not total:
        return "no busy samples"
    return "\n".join([f"busy samples: {total}; self:", *(f"{n / total:6.1%}  {frame}" for frame, n in leaves.most_common(top)),
                      "the service's frames, inclusive:", *(f"{n / total:6.1%}  {frame}" for frame, n in frames.most_common(top))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each later turn (2-6) is sent, each beside a chat")
    parser.add_argument("--profile", action="store_true", help="record the later turns with py-spy")
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-api-cpu")
    out.mkdir(parents=True)
    cores = os.cpu_count()
    lines = [f"# The API process's CPU per request, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {MODEL}, {cores} cores, "
             f"shared with other work), load average before: {load_average()}", "```"]
    bodies = [turn_body(body) for body in turns()]
    config = CONFIG.format(threads=THREADS, n_ctx=N_CTX) + settings_yaml()
    with LiveServer(out / "server", config=config) as live:
        assert live.process is not None
        pid = live.process.pid
        client = httpx.Client(base_url=live.api, timeout=900)
        streamed(client, "/responses", bodies[0])  # the session's prefill, once
        streamed(client, "/chat/completions", chat_body(0))
        for body in bodies[1:]:
            streamed(client, "/responses", body)
        idle = idle_ms(pid)
        rate, short = in_flight_rate(pid, client)
        chats: list[tuple[float, int, float]] = []
        later: list[tuple[float, int, float]] = []
        for round_ in range(args.rounds):
            for n, body in enumerate(bodies[1:], 2):
                chats.append(measured(pid, client, "/chat/completions", chat_body(len(chats) + 1)))
                later.append(measured(pid, client, "/responses", body))
                print(f"round {round_ + 1} turn {n}: {later[-1][0]:.1f} ms ({later[-1][1]} tokens, {later[-1][2]:.1f} s); "
                      f"chat {chats[-1][0]:.1f} ms ({chats[-1][1]} tokens, {chats[-1][2]:.1f} s)", flush=True)
        spied = profile(pid, client, bodies[1:], out) if args.profile else ""
    median = lambda runs, own=False: statistics.median(ms - (rate * wall if own else 0) for ms, _, wall in runs)  # noqa: E731
    chat, turn = median(chats), median(later)
    chat_own, turn_own = median(chats, True), median(later, True)
    lines += [
        f"idle: {idle:.2f} ms of CPU a second; while a request is in flight: {rate:.2f} ms a second more "
        f"(a 1-token chat on a {LONG_WORDS}-word new prompt against a short one's {short:.1f} ms)",
        f"streamed chat, {OUTPUT} tokens (median of {len(chats)}): {chat:.1f} ms of the API process's CPU "
        f"({chat_own:.1f} ms less its seconds in flight), {statistics.median(w for _, _, w in chats):.1f} s; "
        f"tokens out {sorted({t for _, t, _ in chats})}",
        f"later Codex turn (turns 2-6, 44-46 KB, ~9k tokens, at most {OUTPUT} tokens out; median of {len(later)}): "
        f"{turn:.1f} ms ({turn_own:.1f} ms less its seconds in flight), {statistics.median(w for _, _, w in later):.1f} s; "
        f"tokens out {sorted({t for _, t, _ in later})}",
        *(f"  turn {n}: " + ", ".join(f"{ms:.1f} ms ({tokens} tokens, {wall:.1f} s)" for ms, tokens, wall in later[n - 2 :: len(bodies) - 1])
          for n in range(2, len(bodies) + 1)),
        f"later turn / chat: {turn / chat:.2f}x (bar <= 1.5x: {'met' if turn / chat <= 1.5 else 'NOT met'}); "
        f"less their seconds in flight: {turn_own / chat_own:.2f}x",
    ]
    full = [run for run in later if run[1] == OUTPUT]  # the same tokens out as the chat
    if full:
        lines.append(f"the later turns that ran {OUTPUT} tokens too (median of {len(full)}): {median(full):.1f} ms = "
                     f"{median(full) / chat:.2f}x the chat; less their seconds in flight {median(full, True):.1f} ms = "
                     f"{median(full, True) / chat_own:.2f}x")
    if spied:
        lines += ["", "py-spy, the later turns:", spied]
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": cores, "model": MODEL, "output_tokens": OUTPUT,
              "runs": "[ms of CPU, tokens out, seconds]", "chat": chats, "later_turns": later, "idle_ms_per_s": idle,
              "in_flight_ms_per_s": rate, "chat_median_ms": chat, "later_turn_median_ms": turn, "ratio": turn / chat,
              "ratio_less_in_flight": turn_own / chat_own, "bar": 1.5,
              "equal_output_ratio": median(full) / chat if full else None}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"api-cpu-{time.strftime('%Y-%m-%d')}.json").write_text(json.dumps(result, indent=1))
    finish(out, lines)


if __name__ == "__main__":
    main()
