"""The official SDK's clients for a live server, and servers that require keys: built here
once for every suite (no retries, so a test sees exactly what the server answered)."""

from __future__ import annotations

import importlib
import importlib.util
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import openai

from tests.support.server import LiveServer


# One SSL context for every client: httpx builds one per client (and per top-level
# ``httpx.get``), 20-50 ms of CPU loading certifi's bundle each, though every test speaks
# plain HTTP to loopback; the hostile cases made 3 clients each (9 s of 37 s in a run).
TLS = ssl.create_default_context()


def share_tls_context() -> None:
    """Every httpx client built with the default ``verify=True`` (a top-level ``httpx.get``,
    a client a test or an SDK builds) gets ``TLS`` rather than a context of its own: ~110
    call sites left 18 CPU-s a full run in ``ssl.create_default_context`` (py-spy). ``TLS``
    trusts what httpx's would (OpenSSL's default paths, SSL_CERT_FILE/DIR where set); a
    ``verify`` or certificate of the caller's own is built as httpx builds it. For httpx and
    httpx2 (the OpenAI and Anthropic SDKs' own clients); called once by each test process
    (tests/conftest.py)."""
    for name in ("httpx", "httpx2"):
        if importlib.util.find_spec(name) is not None:
            transports = importlib.import_module(f"{name}._transports.default")  # where its transports look the builder up
            _share(transports, transports.create_ssl_context)


def _share(transports, build) -> None:
    def shared(verify: ssl.SSLContext | str | bool = True, cert=None, trust_env: bool = True) -> ssl.SSLContext:
        return TLS if verify is True and cert is None else build(verify=verify, cert=cert, trust_env=trust_env)

    transports.create_ssl_context = shared


def http_client(**options) -> httpx.Client:
    """An httpx client built without loading the certificate bundle again."""
    return httpx.Client(verify=TLS, **options)


def sdk(live: LiveServer, api_key: str = "client-key", timeout: float = 120, max_retries: int = 0, **options) -> openai.OpenAI:
    options.setdefault("http_client", openai.DefaultHttpxClient(verify=TLS))
    return openai.OpenAI(base_url=live.api, api_key=api_key, max_retries=max_retries, timeout=timeout, **options)


def async_sdk(live: LiveServer, api_key: str = "client-key", timeout: float = 120) -> openai.AsyncOpenAI:
    http = openai.DefaultAsyncHttpxClient(verify=TLS)
    return openai.AsyncOpenAI(base_url=live.api, api_key=api_key, max_retries=0, timeout=timeout, http_client=http)


def keyed_server(
    workdir: Path, keys: list[str], admin_keys: list[str] = (), env: dict[str, str] | None = None, **options
) -> LiveServer:
    """A server (not started) that accepts only ``keys`` (and ``admin_keys`` as admins)."""
    env = {"LLM_BACKEND_API_KEYS": ",".join(keys), **(env or {})}
    if admin_keys:
        env["LLM_BACKEND_ADMIN_KEYS"] = ",".join(admin_keys)
    return LiveServer(workdir, env=env, **options)


def managed_key(live: LiveServer, name: str, *options: str) -> tuple[str, str]:
    """A managed key (its value, its id), made by the CLI as an operator would: ``keys
    create`` shows the id beside the key (on stderr), as ``keys list`` would (another CLI
    process, ~0.6 CPU-s, each time)."""
    made = subprocess.run([sys.executable, "-m", "llm_backend", "keys", "create", "--name", name, *options],
                          capture_output=True, text=True, env=live.env, check=True)
    [key_id] = [line.split()[1] for line in made.stderr.splitlines() if line.startswith("id:")]
    return made.stdout.split()[-1], key_id


def admin_sdk(live: LiveServer, admin_key: str = "admin-key", timeout: float = 120) -> openai.OpenAI:
    """The SDK's admin client (``client.admin.organization...``), as an operator holds it."""
    return openai.OpenAI(
        base_url=live.api, api_key=admin_key, admin_api_key=admin_key, max_retries=0, timeout=timeout,
        http_client=openai.DefaultHttpxClient(verify=TLS),
    )


async def answered(run):
    """``run()``'s result (an Agents SDK run on the local model), run once more where an
    answer after a tool's result ran on to max_tokens: SmolLM2 then loops, over the random
    call id it was shown (``<tool_response id="call_b4e5e4e2b28425f22f22b2b2b2...`` in a CI
    run) or over what the tool returned, and the SDK raises on an incomplete response. The
    tests that use it ask about the SDK's paths through the service; where a 135M model stops
    is its judgement, not theirs. A second run is another computation: another call id makes
    another prompt, and on the session's shared KV pool even the same prompt lies over other
    cells, whose last bits differ (docs/MODELS.md, "Bit-exactness"). A second loop still fails."""
    from agents.exceptions import ModelBehaviorError

    try:
        return await run()
    except ModelBehaviorError as error:
        if "max_output_tokens" not in str(error):
            raise
        return await run()


# The events that end one response on a Responses WebSocket (``client.responses.connect()``).
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def until_terminal(connection) -> list:
    """The events of one response (or one error), read from an SDK's socket ``connection``."""
    events = []
    for event in connection:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("the connection closed mid-response")
