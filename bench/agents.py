"""`make bench-agents` (issue #59): the six coding agents a user points at this service, each
run once, headless, with its DEFAULT prompt and tools (nothing shrunk, unlike
tests/e2e/test_agent_clients.py), a one-line task, against the packaged model as `make run`
serves it (no config: the embedded default's window and shared pool; ``--config`` for another).

Each client gets only its documented settings (tests/support/agent_clients.py: base URL, key,
model, the switches that keep it off the network) and the knobs that bound a turn on a small
model, each set where the client reads it (``KNOBS`` lists them): its longest answer (the
135M model rarely ends a turn by itself: Claude Code and opencode ask for 32,000 tokens),
its stream idle timeout raised past a long prefill (Qwen Code's 240 s watches chat chunks,
and the chat lane sends only SSE comments while it prefills, which the SDK drops), greedy
where it lets one ask (opencode, Qwen Code; aider's default). Codex sends no
``max_output_tokens`` and no temperature: its answer ends at the model's ``max_answer``.

The clients speak to a recording proxy in front of the server (bytes passed through as they
come), which notes per request: the request's bounds (``max_tokens``..., ``temperature``,
tools), its status, the time to the first answer token (a text, reasoning or call delta),
its end, its prompt tokens (the answer's ``usage``; where there is none, the body counted by
the service's ``/v1/responses/input_tokens`` or ``/v1/messages/count_tokens``) and any error
the answer carried. A client is *answered* when it exits 0, a model request succeeded and neither the
server nor the client said the prompt did not fit. Each client has a wall-clock limit
(``--limit``, 300 s; `make bench-agents` gives 900): past it its process group is ended and the row says so.

    .venv/bin/python bench/agents.py [--clients codex,claude] [--limit 300] [--config FILE]

The report goes to bench-results/<time>-agents/ (results.md, calls.json), with the load
average before and after each client: on a shared machine it moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import finish, load_average  # noqa: E402
from tests.support import agent_clients as agents  # noqa: E402
from tests.support.clients import keyed_server  # noqa: E402
from tests.support.loopback import LoopbackApp  # noqa: E402

MODEL = "smollm2"
TASK = "Say hello."
CLAUDE = agents.BIN / "claude"
LONGEST = 256  # the answer's bound, where the client has a knob for it
IDLE_MS = 1_800_000  # stream idle timeouts raised past a prefill of minutes
# The fast ones first: a slow client past its limit leaves the others their figures.
ORDER = ("aider", "continue", "opencode", "codex", "claude", "qwen")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # opencode colours its output, closed or not
# How each says a prompt did not fit: Codex ("ran out of room in the model's context window"),
# Claude Code ("Prompt is too long"), the service (OpenAI's message and code). Not "context
# window" alone: Claude Code prints that it assumes one for a model it does not know.
OUT_OF_ROOM = ("ran out of room", "prompt is too long", "maximum context length", "context_length_exceeded")


@dataclass
class Call:
    """One request a client sent, as the proxy saw it (times: seconds since the client started)."""

    client: str
    path: str
    sent: float
    bounds: dict
    status: int | None = None
    first: float | None = None
    pieces: int = 0  # the answer's deltas (about a token each): its decode rate after ``first``
    ended: float | None = None
    input_tokens: int | None = None
    counted: str = "usage"
    error: str | None = None
    left: bool = False
    body: dict | None = field(default=None, repr=False)


def bounds_of(body: dict) -> dict:
    """What a request says of its answer: the bound, sampling, tools, streaming."""
    keys = ("max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "stream", "stream_options")
    found = {key: body[key] for key in keys if key in body}
    found["tools"] = len(body.get("tools") or [])
    return found


def answers(event: dict) -> bool:
    """Whether a streamed event carries the answer's first token (text, reasoning or a call)."""
    kind = event.get("type", "")
    if kind.startswith("response.") and kind.endswith(".delta") or kind == "content_block_delta":
        return True
    deltas = [choice.get("delta") or {} for choice in event.get("choices") or []]
    return any(delta.get(key) for delta in deltas for key in ("content", "tool_calls", "reasoning_content", "reasoning"))


def prompt_tokens(usage: dict) -> int | None:
    """A usage's prompt tokens: OpenAI's count them all, Anthropic's leave the cached ones apart."""
    if "prompt_tokens" in usage:
        return usage["prompt_tokens"]
    if "input_tokens" in usage:
        return sum(usage.get(key) or 0 for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    return None


def observe(call: Call, event: dict, now: float) -> None:
    if answers(event):
        call.pieces += 1
        call.first = now if call.first is None else call.first
    for holder in (event, event.get("response") or {}, event.get("message") or {}):
        if isinstance(holder.get("usage"), dict) and (tokens := prompt_tokens(holder["usage"])):
            call.input_tokens = max(call.input_tokens or 0, tokens)
        if holder.get("error"):
            error = holder["error"]
            call.error = error.get("message", str(error)) if isinstance(error, dict) else str(error)


class Proxy(LoopbackApp):
    """Passes every request to ``target`` and each answer's bytes back as they come, noting a
    ``Call`` for each model request of the client running now (``client``, since ``since``)."""

    client_max_size = 64 << 20
    MODEL_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.client, self.since = "", time.monotonic()
        self.calls: list[Call] = []

    def routes(self, app) -> None:
        from aiohttp import web

        http = httpx.AsyncClient(base_url=self.target, timeout=None)

        async def forward(request):
            raw = await request.read()
            call = None
            if request.method == "POST" and request.path in self.MODEL_PATHS:
                body = json.loads(raw)
                call = Call(self.client, request.path, self.now(), bounds_of(body), body=body)
                self.calls.append(call)
            # Identity encoding: the bytes are read on the way.
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length", "accept-encoding")}
            answer = await http.send(http.build_request(request.method, request.path_qs, headers=headers, content=raw), stream=True)
            response = web.StreamResponse(status=answer.status_code, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "transfer-encoding")})
            await response.prepare(request)
            streamed = answer.headers.get("content-type", "").startswith("text/event-stream")
            pending = b""
            try:
                async for chunk in answer.aiter_raw():
                    await response.write(chunk)
                    if call is not None:
                        pending = self.read(call, pending + chunk) if streamed else pending + chunk
                await response.write_eof()
            except ConnectionError:
                if call is not None:
                    call.left = True  # the client hung up (its own timeout, or its process ended)
            finally:
                await answer.aclose()
                if call is not None:
                    call.status, call.ended = answer.status_code, self.now()
                    self.ended(call, pending, streamed)
            return response

        app.router.add_route("*", "/{tail:.*}", forward)

    def now(self) -> float:
        return time.monotonic() - self.since

    def read(self, call: Call, data: bytes) -> bytes:
        """The SSE events of ``data`` noted in ``call``; the unfinished line left over."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            if line.startswith(b"data:") and line[5:].strip().startswith(b"{"):
                observe(call, json.loads(line[5:]), self.now())
        return rest

    def ended(self, call: Call, rest: bytes, streamed: bool) -> None:
        """A JSON answer (an error, or an answer not streamed) read whole at its end."""
        if streamed or not rest.strip().startswith(b"{"):
            return
        answer = json.loads(rest)
        observe(call, answer, call.ended)
        if call.status == 200 and call.first is None:
            call.first = call.ended  # not streamed: its first token comes with the rest

@dataclass
class Run:
    """One client's run: its process's end and what it printed last."""

    client: str
    exit: int | str
    seconds: float
    output: str
    load_before: str
    load_after: str = ""


class Bounded:
    """Runs a client as agent_clients.run does (its own home, stdin closed), in a process group
    ended after ``limit`` seconds: Codex's and Claude Code's Node wrappers start the real binary
    as a child holding the pipes, which subprocess.run's timeout would wait on. ``env`` adds the
    bench's knobs to the client's documented settings."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.env: dict[str, str] = {}

    def __call__(self, argv: list[str], workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        assert Path(argv[0]).exists(), f"{argv[0]} is missing: run `make test` (it installs the clients)"
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), **env, **self.env}
        with open(workdir / "stdout", "w+") as out, open(workdir / "stderr", "w+") as err:
            process = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                       start_new_session=True)
            try:
                code: int | str = process.wait(self.limit)
            except subprocess.TimeoutExpired:
                code = f"killed after {self.limit:.0f} s"
            finally:  # what the client left running too (or all of it, the bench interrupted)
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(process.pid, sig)
                        time.sleep(1)
                    except ProcessLookupError:
                        break
                process.wait()
            out.seek(0), err.seek(0)
            return subprocess.CompletedProcess(argv, code, out.read(), err.read())


def json_file(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1))


# The knobs each client is given beyond agent_clients' settings (the report repeats them).
KNOBS = {
    "codex": "none for its answer (0.169 sends no max_output_tokens: the model's max_answer bounds it); "
             "stream_idle_timeout_ms left at 300,000 (the keepalive events restart it)",
    "opencode": f'~/.config/opencode/opencode.json: models.{MODEL} {{temperature: true, limit {{context: 32768, '
                f'output: {LONGEST}}}}}, agent.build.temperature 0',
    "qwen": f'~/.qwen/settings.json: model.generationConfig {{samplingParams {{temperature: 0, max_tokens: {LONGEST}}}, '
            f'streamIdleTimeoutMs: {IDLE_MS}, contextWindowSize: 32768}}',
    "claude": f"CLAUDE_CODE_MAX_OUTPUT_TOKENS={LONGEST}, CLAUDE_STREAM_IDLE_TIMEOUT_MS={IDLE_MS}, "
              f"ANTHROPIC_DEFAULT_HAIKU_MODEL={MODEL}",
    "continue": f"its model's defaultCompletionOptions {{maxTokens: {LONGEST}, temperature: 0}}",
    "aider": "none (its model metadata file as agent_clients writes it: 2,048 in, 512 out; temperature 0 its default)",
}


def run_client(name: str, api: str, workdir: Path, bounded: Bounded) -> subprocess.CompletedProcess:
    """``name`` with its documented settings, its default prompt and tools, and ``KNOBS``."""
    home = workdir / "home"
    bounded.env = {}
    if name == "codex":
        return agents.codex(api, MODEL, workdir, TASK)
    if name == "opencode":
        json_file(home / ".config" / "opencode" / "opencode.json", {
            # ``temperature: true``: else opencode sends no temperature to a model it does not know.
            "provider": {"llm-backend": {"models": {MODEL: {"temperature": True, "limit": {"context": 32768, "output": LONGEST}}}}},
            "agent": {"build": {"temperature": 0}}})
        return agents.opencode(api, MODEL, workdir, TASK)
    if name == "qwen":
        json_file(home / ".qwen" / "settings.json", {"model": {"generationConfig": {
            "samplingParams": {"temperature": 0, "max_tokens": LONGEST}, "streamIdleTimeoutMs": IDLE_MS,
            "contextWindowSize": 32768}}})
        return agents.qwen(api, MODEL, workdir, TASK)
    if name == "continue":
        # agent_clients' config and the bound (it sends no max_tokens, and no temperature
        # unless told: a sampled answer of the 135M model ran past 300 s).
        config = workdir / "continue.yaml"
        config.write_text(
            f"name: llm-backend\nversion: 0.0.1\nschema: v1\nmodels:\n  - name: {MODEL}\n    provider: openai\n"
            f"    model: {MODEL}\n    apiBase: {api}\n    apiKey: {agents.KEY}\n    roles: [chat]\n"
            f"    defaultCompletionOptions: {{maxTokens: {LONGEST}, temperature: 0}}\n")
        return agents.run([str(agents.BIN / "cn"), "-p", "--config", str(config), TASK], workdir, {})
    if name == "aider":
        return agents.aider(api, MODEL, workdir, TASK)
    # Claude Code: Messages at the service's root (docs/MESSAGES.md); its background requests
    # (titles, topic checks) to the same model, not to a claude-haiku the service lacks.
    bounded.env = {"ANTHROPIC_BASE_URL": api.removesuffix("/v1"), "ANTHROPIC_AUTH_TOKEN": agents.KEY,
                   "ANTHROPIC_MODEL": MODEL, "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
                   "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(LONGEST), "CLAUDE_STREAM_IDLE_TIMEOUT_MS": str(IDLE_MS)}
    return agents.run([str(CLAUDE), "-p", TASK], workdir, {})


# What the counting operations take of a request (the rest, ``stream``, ``max_tokens``... refused or unused).
RESPONSES_KEYS = ("model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text")
MESSAGES_KEYS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def as_responses(body: dict) -> dict:
    """A first turn's chat body (system and user messages, function tools) as Responses input."""
    def text(content) -> str:
        return content if isinstance(content, str) else "".join(part.get("text", "") for part in content or [])

    return {"model": body["model"], "input": [{"role": m["role"], "content": text(m.get("content"))} for m in body["messages"]],
            "tools": [{"type": "function", **tool["function"]} for tool in body.get("tools") or []]}


def counted(http: httpx.Client, call: Call) -> None:
    """A call's prompt tokens where its answer said none (a chat stream without
    ``include_usage``, a client that left during the prefill): counted by the service's own
    counting operations (the model's template and tokenizer, no prefill), a chat body as
    Responses input (``as_responses``)."""
    if call.input_tokens or call.body is None:
        return
    if call.path == "/v1/messages":
        path, body = "/messages/count_tokens", {k: v for k, v in call.body.items() if k in MESSAGES_KEYS}
    else:
        chat = call.path == "/v1/chat/completions"
        path, body = "/responses/input_tokens", as_responses(call.body) if chat else call.body
        body = {k: v for k, v in body.items() if k in RESPONSES_KEYS}
    answer = http.post(path, json=body)
    if answer.status_code == 200:
        call.input_tokens, call.counted = prompt_tokens(answer.json()), path.removeprefix("/")
    else:
        call.counted = f"{path} answered {answer.status_code}: {answer.text[:200]}"


def closed(calls: list[Call], within: float = 30) -> None:
    """Wait until the proxy has closed each of ``calls`` (a client ended mid-stream: the proxy
    learns it at its next write, a keep-alive within 15 s), so the next client starts alone."""
    deadline = time.monotonic() + within
    while any(call.ended is None for call in calls) and time.monotonic() < deadline:
        time.sleep(0.5)


def answered(run: Run, calls: list[Call]) -> bool:
    said = (run.output + " ".join(call.error or "" for call in calls)).lower()
    return run.exit == 0 and any(call.status == 200 and not call.error for call in calls) and not any(
        phrase in said for phrase in OUT_OF_ROOM)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def turn_of(calls: list[Call]) -> Call | None:
    """The turn: the first request with the client's tools (Claude Code and opencode send small
    ones beside it, for a title or a topic); aider sends none, so its first."""
    return max(calls, key=lambda call: call.bounds["tools"], default=None)


def row(run: Run, calls: list[Call]) -> str:
    """The report's line for one client: its exit and time, then its first model request."""
    first = turn_of(calls)
    described = (f"{len(calls)} requests; the turn's {first.path} {first.status}{' (client left)' if first.left else ''}, "
                 f"prompt {first.input_tokens} tokens ({first.counted}), sent at {seconds(first.sent)} s, first token at {seconds(first.first)} s, "
                 f"ended at {seconds(first.ended)} s ({first.pieces} deltas), bounds {json.dumps(first.bounds)}"
                 + (f", error: {first.error}" if first.error else "") if first else "no model request")
    shown = [line.strip() for line in ANSI.sub("", run.output).splitlines() if line.strip()]
    last_line = (shown or [""])[-1][:160]
    return (f"{run.client}: {'ANSWERED' if answered(run, calls) else 'NOT ANSWERED'}, exit {run.exit} in "
            f"{run.seconds:.1f} s (load {run.load_before} -> {run.load_after}); {described}; last line: {last_line!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(ORDER), help="which clients, in order (default: all six)")
    parser.add_argument("--limit", type=float, default=300, help="each client's wall-clock limit, seconds")
    parser.add_argument("--config", type=Path, help="a config file for the server (default: none, as `make run`)")
    args = parser.parse_args()
    clients = [name.strip() for name in args.clients.split(",")]
    unknown = set(clients) - set(ORDER)
    if unknown:
        parser.error(f"unknown clients: {sorted(unknown)}; known: {', '.join(ORDER)}")
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-agents")
    out.mkdir(parents=True)
    bounded = Bounded(args.limit)
    agents.run = bounded  # every agent_clients function runs its client through it
    config = args.config.read_text() if args.config else None
    lines = [f"# Coding agents with their default prompts, {time.strftime('%Y-%m-%d %H:%M:%S')}, model {MODEL}, "
             f"server config: {args.config or 'none (the embedded default, as `make run`)'}; task {TASK!r}; "
             f"limit {args.limit:.0f} s a client; load average before: {load_average()}", "```",
             *(f"{name}'s knobs: {KNOBS[name]}" for name in clients)]
    with keyed_server(out / "server", [agents.KEY], config=config) as live, Proxy(live.base_url) as proxy, \
            httpx.Client(base_url=live.api, headers={"authorization": f"Bearer {agents.KEY}"}, timeout=600) as http:
        for name in clients:
            proxy.client, proxy.since = name, time.monotonic()
            run = Run(name, "", 0.0, "", load_average())
            # Outside any git repository (this checkout's status would join Claude Code's
            # prompt, Qwen Code would take the checkout for its project, aider write there).
            workdir = Path(tempfile.mkdtemp(prefix=f"agents-{name}-"))
            done = run_client(name, proxy.api, workdir, bounded)
            shutil.copytree(workdir, out / name, ignore=shutil.ignore_patterns("home"))
            shutil.rmtree(workdir, ignore_errors=True)
            run.exit, run.seconds, run.load_after = done.returncode, proxy.now(), load_average()
            run.output = (done.stdout or "") + (done.stderr or "")
            calls = [call for call in proxy.calls if call.client == name]
            closed(calls)
            for call in calls:
                counted(http, call)
            lines.append(row(run, calls))
            print(lines[-1], flush=True)
            if turn := turn_of(calls):  # as the client sent it (no key: that is a header)
                (out / f"{name}-turn.json").write_text(json.dumps(turn.body, indent=1))
            (out / f"{name}.json").write_text(json.dumps(
                {"run": asdict(run), "calls": [{**asdict(call), "body": None} for call in calls]}, indent=1))
    finish(out, lines)


if __name__ == "__main__":
    main()
