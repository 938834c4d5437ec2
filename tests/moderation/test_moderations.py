"""``POST /v1/moderations`` served here (moderation/model.py): OpenAI's shape through the
official SDK and plain HTTP, its refusals, the model ids, batches and usage accounting."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from llm_backend.moderation.categories import CATEGORIES, MODEL_IDS
from tests.conftest import MODEL
from tests.support.batches import file_lines, line, submit, wait
from tests.support.clients import keyed_server, sdk

THREAT = "I know where you live and I will come and kill you tonight."


def test_one_text_gets_every_category_in_openai_shape(client):
    answer = client.moderations.create(input=THREAT)  # no model: omni-moderation-latest
    assert answer.id.startswith("modr-") and answer.model == "omni-moderation-latest"
    [result] = answer.results
    categories = result.categories.model_dump(by_alias=True)
    scores = result.category_scores.model_dump(by_alias=True)
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert set(categories) == set(scores) == set(applied) == set(CATEGORIES)
    assert result.flagged and categories["harassment/threatening"] and categories["violence"]
    # A narrow category implies its broader ones, scores included.
    assert categories["harassment"] and scores["harassment"] >= scores["harassment/threatening"]
    assert all(0 <= score <= 1 for score in scores.values()) and all(kinds == ["text"] for kinds in applied.values())


def test_a_list_gets_a_result_per_text_and_parts_are_judged_together(client):
    texts = ["What a lovely morning for a walk.", THREAT, ""]
    results = client.moderations.create(model="text-moderation-latest", input=texts).results
    assert [result.flagged for result in results] == [False, True, False]
    assert max(results[2].category_scores.model_dump(by_alias=True).values()) == 0  # nothing to judge
    parts = [{"type": "text", "text": "Dear neighbour, thanks for the cake."}, {"type": "text", "text": THREAT}]
    [together] = client.moderations.create(model="omni-moderation-2024-09-26", input=parts).results
    assert together.flagged


def test_one_threat_in_a_long_benign_letter_is_not_averaged_away(client):
    letter = " ".join(["We had a lovely time at the lake this summer and the children learned to swim."] * 20)
    [result] = client.moderations.create(input=f"{letter} {THREAT} {letter}").results
    assert result.flagged and result.categories.violence


def test_refusals_name_the_part(server, client):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.moderations.create(input=[{"type": "text", "text": "hello"}, image])
    assert refused.value.body["param"] == "input[1]" and refused.value.body["code"] == "unsupported_value"
    with pytest.raises(openai.BadRequestError) as long:
        client.moderations.create(input=["word " * 20_000, "word " * 20_000])
    assert long.value.body["code"] == "context_length_exceeded" and long.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError) as huge:  # refused before it is tokenized
        client.moderations.create(input="x" * (16 * 32_768 + 1))
    assert huge.value.body["code"] == "string_above_max_length" and huge.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.moderations.create(model=MODEL, input="hello")
    assert chat_model.value.body["code"] == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(model="no-such-moderation", input="hello")
    with pytest.raises(openai.BadRequestError) as generating:
        client.chat.completions.create(model="omni-moderation-latest", messages=[{"role": "user", "content": "hi"}])
    assert generating.value.body["code"] == "model_not_supported"
    missing = httpx.post(server.api + "/moderations", json={"model": "omni-moderation-latest"}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input"


def test_the_moderation_ids_are_listed(client):
    listed = {model.id for model in client.models.list()}
    assert set(MODEL_IDS) <= listed
    assert client.models.retrieve("omni-moderation-latest").owned_by == "llm-backend:local"


ADMIN, KEY = "sk-moderation-admin", "sk-moderation-user"


@pytest.fixture(scope="module")
def accounted(tmp_path_factory):
    # Moderations are judged by the embedding model: the chat model is never loaded (lazy).
    env = {"LLM_BACKEND_USAGE_FLUSH_SECONDS": "0.2", "LLM_BACKEND_MODEL_LOAD": "lazy"}
    with keyed_server(tmp_path_factory.mktemp("moderation"), [f"mod={KEY}"], [ADMIN], env=env) as live:
        yield live


def test_moderations_are_a_batch_endpoint_and_in_the_usage(accounted):
    start = int(time.time())
    user = sdk(accounted, api_key=KEY)
    user.moderations.create(input=["one short text", THREAT])
    lines = [line(f"m{index}", {"input": text}, url="/v1/moderations") for index, text in enumerate(["Have a nice day.", THREAT])]
    batch = wait(user, submit(user, lines, endpoint="/v1/moderations").id)
    assert batch.status == "completed" and batch.request_counts.completed == 2
    output = file_lines(user, batch.output_file_id)
    flagged = {item["custom_id"]: item["response"]["body"]["results"][0]["flagged"] for item in output}
    assert flagged == {"m0": False, "m1": True}

    usage = sdk(accounted, api_key=ADMIN, admin_api_key=ADMIN).admin.organization.usage
    deadline = time.monotonic() + 30
    while True:
        page = usage.moderations(start_time=start - 60, group_by=["api_key_id", "model"])
        found = [result for bucket in page.data for result in bucket.results]
        if sum(result.num_model_requests for result in found) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {(result.api_key_id, result.model) for result in found} == {("mod", "omni-moderation-latest")}
    assert sum(result.num_model_requests for result in found) == 3 and sum(result.input_tokens for result in found) > 10
