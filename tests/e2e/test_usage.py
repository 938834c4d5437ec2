"""Usage accounting (storage/usage.py) served through OpenAI's usage operations
(serving/usage.py) and ``llm-backend usage``: the buckets add up to the requests made."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import openai
import pytest

from llm_backend.auth import derived_owner
from tests.conftest import MODEL
from tests.support.clients import keyed_server, sdk
from tests.support.server import LiveServer

KEY_A, KEY_B, ADMIN = "sk-usage-a", "sk-usage-b", "sk-usage-admin"
# A named key is its name in the usage; an unnamed one, a digest of the key (never the key).
OWNER_A, OWNER_B = "alice", derived_owner(KEY_B)
USER = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def accounted(tmp_path_factory) -> LiveServer:
    env = {"LLM_BACKEND_USAGE_FLUSH_SECONDS": "0.2"}
    with keyed_server(tmp_path_factory.mktemp("usage"), [f"{OWNER_A}={KEY_A}", KEY_B], [ADMIN], env=env) as live:
        yield live


@pytest.fixture(scope="module")
def made(accounted):
    """The requests made (chat whole and streamed by key A, embeddings by key B) and the
    tokens their answers reported; ``start``: just before them."""
    start = int(time.time())
    a, b = sdk(accounted, api_key=KEY_A), sdk(accounted, api_key=KEY_B)
    whole = a.chat.completions.create(model=MODEL, messages=USER, max_tokens=3).usage
    chunks = list(
        a.chat.completions.create(
            model=MODEL, messages=USER, max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = chunks[-1].usage
    embedded = b.embeddings.create(model=MODEL, input=["red", "green"]).usage
    return {
        "start": start,
        "chat_input": whole.prompt_tokens + streamed.prompt_tokens,
        "chat_output": whole.completion_tokens + streamed.completion_tokens,
        "embedding_input": embedded.prompt_tokens,
    }


def admin(live: LiveServer) -> openai.OpenAI:
    return sdk(live, api_key=ADMIN, admin_api_key=ADMIN)


def results(page) -> list:
    return [result for bucket in page.data for result in bucket.results]


def eventually(read, check, timeout: float = 10):
    """``read()`` until ``check`` holds of it (the accounting is written every 0.2 s here)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_completions_usage_adds_up_to_the_chat_requests_made_grouped_by_model_and_key(accounted, made):
    usage = admin(accounted).admin.organization.usage
    page = eventually(
        lambda: usage.completions(start_time=made["start"], bucket_width="1m", group_by=["model", "api_key_id"]),
        lambda page: sum(r.num_model_requests for r in results(page)) >= 2,
    )
    found = results(page)
    assert {(r.model, r.api_key_id) for r in found} == {(MODEL, OWNER_A)}
    assert sum(r.input_tokens for r in found) == made["chat_input"]
    assert sum(r.output_tokens for r in found) == made["chat_output"]
    assert sum(r.num_model_requests for r in found) == 2
    assert all(bucket.end_time - bucket.start_time <= 60 for bucket in page.data)


def test_embeddings_usage_adds_up_to_the_embedding_requests_made(accounted, made):
    usage = admin(accounted).admin.organization.usage
    page = eventually(
        lambda: usage.embeddings(start_time=made["start"], group_by=["api_key_id"]),
        lambda page: results(page),
    )
    found = results(page)
    assert [(r.api_key_id, r.model, r.input_tokens, r.num_model_requests) for r in found] == [
        (OWNER_B, None, made["embedding_input"], 1)
    ]


def test_usage_is_filtered_by_key(accounted, made):
    usage = admin(accounted).admin.organization.usage
    eventually(lambda: usage.completions(start_time=made["start"]), lambda page: results(page))
    assert results(usage.completions(start_time=made["start"], api_key_ids=[OWNER_B])) == []


@pytest.mark.parametrize("selector", [{"project_ids": ["proj_abc"]}, {"user_ids": ["user_abc"]}, {"batch": True}])
def test_usage_of_a_project_user_or_batch_is_none_here(accounted, made, selector):
    # No usage here belongs to a project or a user, or comes from a batch: these filters
    # were accepted and ignored, which answered every key's usage.
    usage = admin(accounted).admin.organization.usage
    eventually(lambda: usage.completions(start_time=made["start"]), lambda page: results(page))
    assert results(usage.completions(start_time=made["start"], **selector)) == []
    assert results(usage.completions(start_time=made["start"], batch=False))


def test_buckets_cover_the_range_and_page_with_next_page(accounted):
    usage = admin(accounted).admin.organization.usage
    start = 1_700_000_000 // 3600 * 3600
    first = usage.completions(start_time=start, end_time=start + 5 * 3600, bucket_width="1h", limit=3)
    assert [bucket.start_time for bucket in first.data] == [start, start + 3600, start + 7200]
    assert first.has_more and first.next_page
    rest = usage.completions(start_time=start, end_time=start + 5 * 3600, bucket_width="1h", page=first.next_page)
    assert [bucket.start_time for bucket in rest.data] == [start + 3 * 3600, start + 4 * 3600]
    assert not rest.has_more and rest.next_page is None


def test_usage_this_service_never_has_answers_empty_buckets(accounted, made):
    page = admin(accounted).admin.organization.usage.code_interpreter_sessions(start_time=made["start"])
    assert page.object == "page" and len(page.data) == 1 and page.data[0].results == []


def test_usage_needs_an_admin_key(accounted):
    with pytest.raises(openai.PermissionDeniedError) as raised:
        sdk(accounted, api_key=KEY_A, admin_api_key=KEY_A).admin.organization.usage.completions(start_time=0)
    assert raised.value.code == "insufficient_permissions"


def test_the_cli_prints_usage_per_key_and_model(accounted, made):
    eventually(lambda: results(admin(accounted).admin.organization.usage.embeddings(start_time=made["start"])), bool)
    printed = subprocess.run(
        [sys.executable, "-m", "llm_backend", "usage", "--since", "1h"],
        env={**os.environ, **accounted.env}, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    rows = {tuple(line.split("\t")[:3]): line.split("\t")[3:6] for line in printed.splitlines()[1:]}
    assert rows[(OWNER_A, "completions", MODEL)] == ["2", str(made["chat_input"]), str(made["chat_output"])]
    assert rows[(OWNER_B, "embeddings", MODEL)] == ["1", str(made["embedding_input"]), "0"]


@pytest.mark.parametrize("times", [{"start_time": -116469640224950010412793856}, {"start_time": 0, "end_time": 10**20}])
def test_a_time_no_database_can_hold_is_refused_naming_it(accounted, times):
    # Found by the fuzzer (seeded run): the query overflowed, 500.
    with pytest.raises(openai.BadRequestError) as raised:
        admin(accounted).admin.organization.usage.completions(**times)
    assert raised.value.param == list(times)[-1] and raised.value.code == "invalid_value"
