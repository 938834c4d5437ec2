"""A batch's lines are requests of the key that created it (issue #47): held to its project's
hard spend limit (the batch past it ends its lines with ``insufficient_quota``, its spend
within its limit and within one line's most of it, one line at a time or at the default
``batch_concurrency``, the organisation's limit and another project untouched), and run no
further once the project is archived or the key revoked; a key's own rate limits stay its
interactive requests'.

Servers route ``upstream-smol`` to the real upstream (the session's server, the real model),
priced for the spend test, on SQLite. One line at a time (``batch_concurrency`` 1) unless
a test says otherwise: the moments a project is archived or a key revoked fall between
lines."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from llm_backend.serving.metering.holds import text_bytes
from tests.conftest import MODEL
from tests.support.batches import ENDED, chat_lines, file_lines, submit, wait
from tests.support.clients import TLS, admin_sdk, keyed_server, managed_key, sdk
from tests.support.server import LiveServer

ADMIN = "sk-admin-batch-admission-4f1"
UPSTREAM_MODEL = "upstream-smol"
PRICE = 400  # USD per 1M tokens, in and out: a short chat line costs about a cent and a half
ONE_AT_A_TIME = {"LLM_BACKEND_BATCH_CONCURRENCY": "1"}
STATIC_KEY, TPD = "sk-batch-admission-static-9d2", 100


def _config(upstream: str, priced: bool) -> str:
    # Both names priced alike: the upstream's id and the model it stands for there.
    prices = "prices:\n" + "".join(f"  - {{model: {model}, input: {PRICE}, output: {PRICE}}}\n" for model in (UPSTREAM_MODEL, MODEL))
    return f"""
upstreams:
  - name: lab
    base_url: {upstream}
    models: [{UPSTREAM_MODEL}]
    aliases: {{{UPSTREAM_MODEL}: {MODEL}}}
upstream_catch_all: false
{prices if priced else ""}"""


def _gateway(
    tmp_path_factory, name: str, upstream: str, priced: bool, keys: tuple[str, ...] = (), env: dict[str, str] | None = None,
    one_at_a_time: bool = True,
) -> LiveServer:
    """A server whose lines go upstream (its local models stay unloaded: with none at all,
    a pure gateway forwards the Batch API itself upstream)."""
    env = {**(ONE_AT_A_TIME if one_at_a_time else {}), **(env or {})}
    return keyed_server(tmp_path_factory.mktemp(name), list(keys), [f"ops={ADMIN}"], env=env, config=_config(upstream, priced))


@pytest.fixture(scope="module")
def live(server, tmp_path_factory):
    # A static key whose tokens per day (the static keys' setting) a few lines would spend.
    limited = {"LLM_BACKEND_RATE_LIMIT_TPD": str(TPD)}
    keys = (f"batcher={STATIC_KEY}",)
    with _gateway(tmp_path_factory, "admission", server.api, priced=False, keys=keys, env=limited) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def org(live):
    return admin_sdk(live, ADMIN).admin.organization


def _project_key(org, name: str) -> tuple[str, str, str]:
    """A new project and a service account's key in it: (project id, key, key id)."""
    project = org.projects.create(name=name)
    key = org.projects.service_accounts.create(project.id, name="bot").api_key
    return project.id, key.value, key.id


def _line_cost(usage: dict) -> Decimal:
    return Decimal(usage["prompt_tokens"] + usage["completion_tokens"]) * PRICE / 1_000_000


def _chat(live: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        live.api + "/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120, verify=TLS,
        json={"model": UPSTREAM_MODEL, "messages": [{"role": "user", "content": "Say the number 0."}], "max_tokens": 2},
    )


def _most_cents(body: dict) -> Decimal:
    """What a line holds while it runs (``holds.most_usage``): a token per byte of its text, its output cap."""
    return Decimal(text_bytes(body) + body["max_tokens"]) * PRICE / 1_000_000 * 100


@pytest.mark.parametrize("concurrency", ["one at a time", "default"])
def test_a_batch_past_its_projects_spend_limit_ends_its_lines_with_insufficient_quota(server, tmp_path_factory, concurrency):
    """The issue's case: a project with a limit of a few lines spent every line of its batch
    and pushed the organisation past its own limit, so another project was refused; and at
    the default concurrency (8 lines at once), each admitted before the others were priced,
    the batch passed its limit by up to 8 lines. Each line holds its most before it runs."""
    lines = chat_lines(24, UPSTREAM_MODEL)
    most = max(_most_cents(line["body"]) for line in lines)
    with _gateway(tmp_path_factory, "priced", server.api, priced=True, one_at_a_time=concurrency != "default") as priced:
        org = admin_sdk(priced, ADMIN).admin.organization
        capped, capped_key, _ = _project_key(org, "capped")
        _, other_key, _ = _project_key(org, "other")
        measured = _chat(priced, other_key)  # the organisation's only spend besides the batch
        assert measured.status_code == 200
        line_cents = _line_cost(measured.json()["usage"]) * 100
        limit = 12  # cents: a few lines (a line holds about 4 cents, costs 1 to 2)
        assert 0.5 < line_cents < most < limit / 2, (line_cents, most)
        # The organisation's limit leaves two lines' most more than the project's: the batch
        # (24 lines) would pass it too if its lines were not held to the project's.
        org_limit = math.ceil(line_cents + limit + 2 * most)
        org.projects.spend_limit.update(capped, threshold_amount=limit, currency="USD", interval="month")
        org.spend_limit.update(threshold_amount=org_limit, currency="USD", interval="month")

        client = sdk(priced, capped_key)
        batch = submit(client, lines)
        _ended(priced, batch.id)
        # What is left of the limit holds no more request of the project's (a line's most)...
        refused = httpx.post(
            priced.api + "/chat/completions", headers={"Authorization": f"Bearer {capped_key}"}, timeout=120, verify=TLS,
            json={"model": UPSTREAM_MODEL, "messages": [{"role": "user", "content": "Say the number 0."}], "max_tokens": 50},
        )
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota", refused.text
        assert _chat(priced, other_key).status_code == 200  # ...and the organisation's limit was not reached
        org.projects.spend_limit.delete(capped)

        done = client.batches.retrieve(batch.id)
        assert done.status == "completed", done.errors
        answered = file_lines(client, done.output_file_id)
        refused = file_lines(client, done.error_file_id)
        assert answered and refused and len(answered) + len(refused) == 24
        assert (done.request_counts.completed, done.request_counts.failed) == (len(answered), len(refused))
        for item in refused:
            assert item["response"]["status_code"] == 429
            assert item["response"]["body"]["error"]["code"] == "insufficient_quota"
        spent = sum(_line_cost(item["response"]["body"]["usage"]) * 100 for item in answered)
        # It ran until a line's most no longer fitted, and never past the limit.
        assert limit - most < spent <= limit, (spent, most, len(answered))


@pytest.mark.parametrize("kind", ["static", "managed"])
def test_a_keys_own_rate_limits_are_the_interactive_ones_and_its_batch_lines_leave_them(live, kind):
    """Lines run as the key that made the batch, but its tokens per day are its interactive
    requests' (OpenAI keeps batch limits apart: a project's ``batch_1_day_max_input_tokens``)."""
    key = STATIC_KEY if kind == "static" else managed_key(live, "tpd-batcher", "--tpd", str(TPD))[0]
    first = _chat(live, key)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] < TPD
    client = sdk(live, key)
    done = wait(client, submit(client, chat_lines(3, UPSTREAM_MODEL)).id)
    assert done.status == "completed" and done.request_counts.completed == 3
    assert done.usage.total_tokens + first.json()["usage"]["total_tokens"] > TPD
    assert _chat(live, key).status_code == 200


def _database(live: LiveServer) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{live.workdir / 'data' / 'llm-backend.db'}")


def _lines(live: LiveServer, batch_id: str) -> tuple[str, int, list[int]]:
    """(status, lines answered 200, the statuses of the others answered) of a batch, read
    where its key cannot: in the database."""
    with _database(live).connect() as connection:
        status, seq = connection.execute(sa.text("SELECT status, seq FROM batches WHERE id = :id"), {"id": batch_id}).one()
        outputs = connection.execute(
            sa.text("SELECT output FROM batch_lines WHERE batch_seq = :seq AND done"), {"seq": seq}
        ).scalars().all()
    statuses = [(output if isinstance(output, dict) else json.loads(output))["response"]["status_code"] for output in outputs]
    return status, statuses.count(200), [code for code in statuses if code != 200]


def _ended(live: LiveServer, batch_id: str) -> tuple[str, int, list[int]]:
    deadline = time.monotonic() + 120
    while (found := _lines(live, batch_id))[0] not in ENDED:
        assert time.monotonic() < deadline, found
        time.sleep(0.25)
    return found


def _stopped(live: LiveServer, client, lines: int, stop) -> tuple[int, str, int, list[int]]:
    """A batch of ``lines`` lines, ``stop()`` called once two were answered: (lines answered
    when it returned, the batch's final status, lines answered 200 in all, the others' statuses)."""
    batch = submit(client, chat_lines(lines, UPSTREAM_MODEL, max_tokens=8))
    wait(client, batch.id, until=("in_progress",))
    while client.batches.retrieve(batch.id).request_counts.completed < 2:
        time.sleep(0.1)
    stop()
    _, at_stop, _ = _lines(live, batch.id)
    return at_stop, *_ended(live, batch.id)


def test_an_archived_projects_batch_runs_no_further_line(live, org):
    project, key, _ = _project_key(org, "archived-mid-batch")
    lines = 40
    at_stop, status, ok, others = _stopped(live, sdk(live, key), lines, lambda: org.projects.archive(project))
    assert at_stop < lines - 2
    # The line running when it was archived may finish (it was let in); none starts after.
    assert at_stop <= ok <= at_stop + 1, (at_stop, ok)
    assert status == "completed" and len(others) == lines - ok and set(others) == {401}


def test_a_revoked_keys_batch_runs_no_further_line_and_its_project_sees_it_end(live, org):
    project, key, key_id = _project_key(org, "revoked-mid-batch")
    second = sdk(live, org.projects.service_accounts.create(project, name="second").api_key.value)
    lines = 40
    at_stop, status, ok, others = _stopped(
        live, sdk(live, key), lines, lambda: org.projects.api_keys.delete(key_id, project_id=project)
    )
    assert at_stop <= ok <= at_stop + 1 and at_stop < lines - 2, (at_stop, ok)
    assert status == "completed" and set(others) == {401}
    # The project's other key still reads the batch: the lines stopped for the key alone.
    [batch] = second.batches.list(limit=1).data
    assert batch.status == "completed" and batch.request_counts.completed == ok
    [refused, *_] = file_lines(second, batch.error_file_id)
    assert refused["response"]["body"]["error"]["code"] == "invalid_api_key"
