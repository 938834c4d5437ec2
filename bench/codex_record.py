"""Records the request bodies of a real 6-turn Codex CLI session, for bench/codex_session.py to
replay (issue #49 item 3): what Codex sends is the load, so it is taken from Codex itself.

Codex CLI (tests/node, as `make test` installs it) runs three prompts in one session
(``codex exec``, then ``codex exec resume --last`` twice), pointed with its documented provider
settings (tests/support/agent_clients.py) at a recording proxy in front of the gateway, whose
upstream answers with a recorded call of Codex's shell tool and then a recorded answer
(tests/support/recorded_upstream.py: no local GGUF is tool-trained). Each prompt makes two
``/v1/responses`` requests (the call; the answer after the tool's output): six turns, each
repeating the whole conversation before it, as Codex sends it. The bodies are written to
bench/data/codex_session/turn-N.json as Codex sent them (they hold no key: that is a header).

    .venv/bin/python bench/codex_record.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import agent_clients as agents  # noqa: E402
from tests.support.loopback import LoopbackApp  # noqa: E402
from tests.support.recorded_upstream import RecordedUpstream  # noqa: E402

DATA = ROOT / "bench" / "data" / "codex_session"
WORKDIR = Path("/tmp/codex-session")  # the folder Codex works in: its path is in the bodies
PROMPTS = ["List the files in this folder.", "Show the first lines of notes.txt.", "How many lines does notes.txt have?"]
CALLS = {
    "exec_command": {"cmd": "ls -la"},
    "shell": {"command": ["bash", "-lc", "ls -la"]},
}


class RecordingProxy(LoopbackApp):
    """Forwards every request to ``target`` byte for byte, streaming; keeps /v1/responses bodies."""

    client_max_size = 64 << 20

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.bodies: list[dict] = []

    def routes(self, app) -> None:
        from aiohttp import web

        client = httpx.AsyncClient(base_url=self.target, timeout=600)

        async def forward(request):
            body = await request.read()
            if request.method == "POST" and request.path == "/v1/responses":
                self.bodies.append(json.loads(body))
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            upstream = client.build_request(request.method, request.path_qs, headers=headers, content=body)
            answer = await client.send(upstream, stream=True)
            response = web.StreamResponse(status=answer.status_code, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
            })
            await response.prepare(request)
            async for chunk in answer.aiter_raw():
                await response.write(chunk)
            await answer.aclose()
            await response.write_eof()
            return response

        app.router.add_route("*", "/{tail:.*}", forward)


def workdir() -> Path:
    """The folder Codex works in, as the session was recorded there (a replay's prompts match)."""
    WORKDIR.mkdir(parents=True, exist_ok=True)
    (WORKDIR / "notes.txt").write_text("".join(f"Note {n}: keep the build green.\n" for n in range(1, 13)))
    return WORKDIR


def main() -> None:
    # Here, not at the top: codex_session.py imports ``workdir`` on a GPU machine, whose kit
    # carries no ``openai`` (tests/support/clients.py imports it).
    from tests.support.clients import keyed_server

    workdir()
    with RecordedUpstream("Bash", {"command": "ls -la"}, final="Done: the command ran.", others=CALLS) as upstream:
        config = (f"upstreams:\n  - name: recorded\n    base_url: {upstream.api}\n    api_key: sk-upstream\n"
                  "    models: [coder]\n    responses: local\n")
        with keyed_server(WORKDIR.parent / "codex-session-gateway", [agents.KEY], env={"LLM_BACKEND_LOCAL_MODELS": "false"},
                          config=config) as gateway, RecordingProxy(gateway.base_url) as proxy:
            for number, prompt in enumerate(PROMPTS):
                resume = ["resume", "--last"] if number else []
                done = run_codex(proxy.api, prompt, resume)
                print(f"prompt {number + 1}: exit {done.returncode}; {len(proxy.bodies)} bodies", flush=True)
                if done.returncode != 0:
                    raise SystemExit(done.stdout + done.stderr)
    DATA.mkdir(parents=True, exist_ok=True)
    for number, body in enumerate(proxy.bodies, 1):
        (DATA / f"turn-{number}.json").write_text(json.dumps(body, indent=1) + "\n")
    print(f"{len(proxy.bodies)} bodies in {DATA}")


def run_codex(api: str, prompt: str, resume: list[str]):
    """``codex exec [resume --last] PROMPT`` in WORKDIR, its home kept between the prompts."""
    codex_home = WORKDIR / "home" / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        'model = "coder"\nmodel_provider = "llm-backend"\n\n[model_providers.llm-backend]\n'
        f'name = "llm-backend"\nbase_url = "{api}"\nwire_api = "responses"\nenv_key = "LLM_BACKEND_API_KEY"\n'
    )
    argv = [str(agents.BIN / "codex"), "exec", *resume, "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", prompt]
    return agents.run(argv, WORKDIR, {"CODEX_HOME": str(codex_home), "LLM_BACKEND_API_KEY": agents.KEY})


if __name__ == "__main__":
    main()
