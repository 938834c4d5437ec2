"""A project's per-model rate limits and hard spend limits, set with the SDK's admin client
and held by two replicas on one PostgreSQL together (issue #40): the request past a limit
gets OpenAI's 429 (``rate_limit_exceeded``, ``insufficient_quota``) on whichever replica it
reaches, the one before is answered; costs are usage x price to the cent; an alert fires once.

Both replicas route ``upstream-smol`` to the real upstream (the session's server, the real
model); the first also serves the local model. Windows and spend are counted in the
database (storage/rate_counters.py), never in a replica's memory. A webhook receiver in
this process takes the alerts."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from decimal import Decimal

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.support.batches import chat_lines, file_lines, submit, wait
from tests.support.clients import TLS, admin_sdk, keyed_server, sdk
from tests.support.server import start_together
from tests.support.admin import project_with_key, same_minute, until

ADMIN = "sk-admin-limits-77c1"
UPSTREAM_MODEL = "upstream-smol"
CHAT = [{"role": "user", "content": "Hi"}]
# Each replica reads the control plane's settings again at most this often (2 s by default):
# a change made on one applies on the other after it. Waited out as REFRESH + a margin.
REFRESH = 0.2


# USD per 1M tokens: a token of the upstream model costs a cent in, two out; the local model
# is priced too (costs are whole: upstream and local), its cached tokens at a discount.
PRICES = {UPSTREAM_MODEL: (10_000, None, 20_000), MODEL: (1_000, 500, 3_000)}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"spend-alert-secret-for-tests").decode()


def _config(upstream: str) -> str:
    prices = "".join(
        f"  - {{model: {model}, input: {inp}, output: {out}{'' if cached is None else f', cached_input: {cached}'}}}\n"
        for model, (inp, cached, out) in PRICES.items()
    )
    return f"""
upstreams:
  - name: lab
    base_url: {upstream}
    models: [{UPSTREAM_MODEL}]
    aliases: {{{UPSTREAM_MODEL}: {MODEL}}}
upstream_catch_all: false
usage_flush_seconds: 0.5
prices:
{prices}"""


class Webhooks:
    """A receiver of spend alerts: every POST's body and headers."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((body, {name.lower(): value for name, value in self.headers.items()}))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def webhooks():
    receiver = Webhooks()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def replicas(server, new_database_url, tmp_path_factory, webhooks):
    """Two replicas on one new PostgreSQL database and one data volume (a batch's input file,
    uploaded through one, is read by whichever runs the batch): the first with the local model."""
    url = new_database_url("postgresql")
    env = {
        "LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_DATA_DIR": str(tmp_path_factory.mktemp("shared-data")),
        "LLM_BACKEND_SPEND_ALERT_WEBHOOK_URL": webhooks.url,
        "LLM_BACKEND_SPEND_ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET, "LLM_BACKEND_CONTROL_PLANE_REFRESH_SECONDS": str(REFRESH),
    }
    config = _config(server.api)
    gateway = {**env, "LLM_BACKEND_LOCAL_MODELS": "false"}
    servers = start_together(  # replicas: their starts are independent
        keyed_server(tmp_path_factory.mktemp("first"), [], [f"ops={ADMIN}"], env=env, config=config),
        keyed_server(tmp_path_factory.mktemp("second"), [], [f"ops={ADMIN}"], env=gateway, config=config),
    )
    yield servers
    for live in servers:
        live.stop()


@pytest.fixture(scope="module")
def org(replicas):
    return admin_sdk(replicas[0], ADMIN).admin.organization



def _chat(live, key: str, model: str = UPSTREAM_MODEL) -> httpx.Response:
    return httpx.post(
        live.api + "/chat/completions", json={"model": model, "messages": CHAT, "max_tokens": 2},
        headers={"Authorization": f"Bearer {key}"}, timeout=120, verify=TLS,
    )


def test_a_projects_requests_per_minute_on_a_model_hold_across_two_replicas(replicas, org):
    first, second = replicas
    project, key = project_with_key(org, "rpm")
    _, other_key = project_with_key(org, "other")
    limited = org.projects.rate_limits.update_rate_limit(f"rl-{UPSTREAM_MODEL}", project_id=project, max_requests_per_1_minute=3)
    assert (limited.id, limited.model, limited.max_requests_per_1_minute) == (f"rl-{UPSTREAM_MODEL}", UPSTREAM_MODEL, 3)
    time.sleep(REFRESH + 0.1)  # the second replica reads the control plane's settings again by then
    same_minute()
    assert [_chat(live, key).status_code for live in (first, second, first)] == [200, 200, 200]
    refused = _chat(second, key)
    error = refused.json()["error"]
    assert refused.status_code == 429 and error["code"] == "rate_limit_exceeded"
    assert f"Rate limit reached for {UPSTREAM_MODEL} in project {project} on requests per min (RPM): Limit 3" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another model of the project, and the same model in another project, are not limited.
    assert _chat(first, key, MODEL).status_code == 200
    assert _chat(second, other_key).status_code == 200


def test_a_projects_tokens_per_minute_refuse_the_request_after_the_one_that_spent_them(replicas, org):
    first, second = replicas
    project, key = project_with_key(org, "tpm")
    org.projects.rate_limits.update_rate_limit(f"rl-{UPSTREAM_MODEL}", project_id=project, max_tokens_per_1_minute=5)
    time.sleep(REFRESH + 0.1)
    same_minute()
    answered = _chat(first, key)
    assert answered.status_code == 200 and answered.json()["usage"]["total_tokens"] > 5
    for _ in range(50):  # the tokens are added just after the answer, off its path
        refused = _chat(second, key)
        if refused.status_code == 429:
            break
        time.sleep(0.1)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"


def test_the_listed_limits_show_each_model_and_a_limit_is_removed_by_the_largest_value(replicas, org):
    project, _ = project_with_key(org, "listed")
    listed = {item.model: item for item in org.projects.rate_limits.list_rate_limits(project)}
    assert MODEL in listed and listed[MODEL].max_requests_per_1_minute == 2**31 - 1
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, max_requests_per_1_day=10)
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, max_requests_per_1_day=2**31 - 1)
    assert org.projects.rate_limits.list_rate_limits(project).data[0].max_requests_per_1_day == 2**31 - 1
    with pytest.raises(openai.BadRequestError) as refused:
        org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, max_requests_per_1_minute=0)
    assert refused.value.param == "max_requests_per_1_minute"
    with pytest.raises(openai.NotFoundError):
        org.projects.rate_limits.update_rate_limit("rl-no-such-model", project_id=project, max_requests_per_1_minute=1)
    changes = [e.rate_limit_updated.changes_requested for e in org.audit_logs.list(project_ids=[project], event_types=["rate_limit.updated"])]
    assert [c.max_requests_per_1_day for c in changes] == [2**31 - 1, 10]


# --- spend --------------------------------------------------------------------------------



def _cost(model: str, usage: dict) -> Decimal:
    price_in, price_cached, price_out = (Decimal(str(p)) if p is not None else None for p in PRICES[model])
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    price_cached = price_in if price_cached is None else price_cached
    million = Decimal(1_000_000)
    return ((usage["prompt_tokens"] - cached) * price_in + cached * price_cached + usage["completion_tokens"] * price_out) / million


def _day_costs(org, project_ids: list[str], group_by: list[str]) -> list:
    today = int(time.time()) // 86400 * 86400
    return [r for bucket in org.usage.costs(start_time=today, group_by=group_by, project_ids=project_ids, limit=1).data for r in bucket.results]


def test_costs_of_a_known_sequence_are_usage_times_price_to_the_cent_by_project(replicas, org):
    first, second = replicas
    a, key_a = project_with_key(org, "costs-a")
    b, key_b = project_with_key(org, "costs-b")
    expected = {a: Decimal(0), b: Decimal(0)}
    for live, key, project, model in ((first, key_a, a, UPSTREAM_MODEL), (second, key_a, a, UPSTREAM_MODEL),
                                      (first, key_a, a, MODEL), (first, key_a, a, MODEL), (second, key_b, b, UPSTREAM_MODEL)):
        answer = _chat(live, key, model)
        assert answer.status_code == 200
        expected[project] += _cost(model, answer.json()["usage"])

    def totals() -> dict | None:
        found = {r.project_id: Decimal(str(r.amount.value)) for r in _day_costs(org, [a, b], ["project_id"])}
        return found if all(abs(found.get(p, 0) - cost) < Decimal("0.005") for p, cost in expected.items()) else None

    assert until(totals), (_day_costs(org, [a, b], ["project_id"]), expected)  # usage is written every 0.5 s here
    items = {r.line_item: r for r in _day_costs(org, [a], ["line_item"])}
    assert {f"{UPSTREAM_MODEL}, input", f"{UPSTREAM_MODEL}, output", f"{MODEL}, output"} <= set(items)
    assert items[f"{UPSTREAM_MODEL}, output"].quantity_unit == "tokens"
    assert abs(sum(Decimal(str(r.amount.value)) for r in items.values()) - expected[a]) < Decimal("0.005")


def test_a_hard_spend_limit_holds_across_two_replicas_with_insufficient_quota(replicas, org):
    first, second = replicas
    project, key = project_with_key(org, "capped")
    _, other_key = project_with_key(org, "uncapped")
    limit = org.projects.spend_limit.update(project, threshold_amount=1, currency="USD", interval="month")
    assert (limit.threshold_amount, limit.enforcement.status) == (1, "inactive")
    time.sleep(REFRESH + 0.1)  # the second replica reads the control plane's settings again by then
    # A request may cost more than a cent: its most is held before it is served, and does not fit.
    held = _chat(first, key)
    assert held.status_code == 429 and held.json()["error"]["code"] == "insufficient_quota"
    assert "this request may cost up to $" in held.json()["error"]["message"]
    org.projects.spend_limit.delete(project)
    time.sleep(REFRESH + 0.1)
    assert _chat(first, key).status_code == 200  # more than a cent spent
    org.projects.spend_limit.update(project, threshold_amount=1, currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)

    def refused():
        answer = _chat(second, key)
        return answer if answer.status_code == 429 else None

    answer = until(refused)
    assert answer is not None and answer.json()["error"]["code"] == "insufficient_quota"
    assert _chat(first, key, MODEL).status_code == 429  # the whole project, every model, every replica
    assert _chat(second, other_key).status_code == 200
    assert org.projects.spend_limit.retrieve(project).enforcement.status == "enforcing"
    org.projects.spend_limit.delete(project)
    time.sleep(REFRESH + 0.1)
    assert _chat(second, key).status_code == 200


def test_a_spend_alert_at_half_the_limit_fires_exactly_once_signed(replicas, org, webhooks):
    first, second = replicas
    project, key = project_with_key(org, "alerted")
    cost = _cost(UPSTREAM_MODEL, _chat(first, key).json()["usage"])  # what one request costs, in USD
    cents = int(cost * 100)
    org.projects.spend_limit.update(project, threshold_amount=10 * cents, currency="USD", interval="month")
    alert = org.projects.spend_alerts.create(  # at 50 % of the hard limit
        project, threshold_amount=5 * cents, currency="USD", interval="month",
        notification_channel={"type": "email", "recipients": ["finance@example.com"]},
    )
    time.sleep(REFRESH + 0.1)
    before = len(webhooks.received)
    for live in (second, first, second, first, second, first):  # past 50 % at the fifth, then on (never the limit)
        assert _chat(live, key).status_code == 200
    assert until(lambda: len(webhooks.received) > before)
    time.sleep(1.5)  # any second firing would have come by now
    mine = [(body, headers) for body, headers in webhooks.received[before:] if json.loads(body)["data"]["alert_id"] == alert.id]
    assert len(mine) == 1
    body, headers = mine[0]
    openai.OpenAI(api_key="unused", webhook_secret=WEBHOOK_SECRET).webhooks.verify_signature(body, headers)
    event = json.loads(body)["data"]
    assert event["project_id"] == project and event["spent_amount"] >= 5 * cents and event["threshold_amount"] == 5 * cents
    assert event["notification_channel"]["recipients"] == ["finance@example.com"]
    fired = [e for e in org.audit_logs.list(resource_ids=[alert.id], limit=100)
             if "fired" in (e.model_dump().get("tenant.billing.alerts.updated") or {}).get("changes_requested", {})]
    assert len(fired) == 1


def test_batch_lines_are_held_to_the_batch_input_tokens_of_a_day_and_not_to_the_interactive_limits(replicas, org):
    first, second = replicas
    project, key = project_with_key(org, "batched")
    org.projects.rate_limits.update_rate_limit(
        f"rl-{UPSTREAM_MODEL}", project_id=project, batch_1_day_max_input_tokens=1, max_requests_per_1_minute=1
    )
    time.sleep(REFRESH + 0.1)  # either replica may run a batch's lines
    client = sdk(first, key)
    same_minute()
    done = wait(client, submit(client, chat_lines(1, UPSTREAM_MODEL)).id)
    assert done.status == "completed" and done.request_counts.completed == 1  # the day's batch tokens were not spent yet
    # The line did not count in the requests per minute: the first interactive request is answered.
    assert [_chat(first, key).status_code, _chat(second, key).status_code] == [200, 429]
    # A limit that resets tomorrow fails the line at once (its retry-after is past the batch
    # runner's MAX_RETRY_AFTER): four retries in 30 s only held the batch.
    started = time.monotonic()
    later = wait(client, submit(client, chat_lines(1, UPSTREAM_MODEL)).id)
    assert time.monotonic() - started < 25
    [failed] = file_lines(client, later.error_file_id)
    assert later.request_counts.failed == 1 and failed["response"]["status_code"] == 429
    assert "batch input tokens per day" in failed["response"]["body"]["error"]["message"]
