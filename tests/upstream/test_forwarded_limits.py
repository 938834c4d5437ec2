"""Operations nobody serves here are forwarded, and limited and priced by what they are
(issue #47): images count against ``max_images_per_1_minute`` (``n`` each) and cost per
image, their ``n`` images held against a hard spend limit while they are made; Responses forwarded by a pure gateway are held to the model's limits and metered from
their answer (holding their cap and their body's bytes under a hard spend limit); speech forwarded to an upstream voice costs its characters. A limit this
service cannot count is refused naming it, never stored and ignored.

A pure gateway in front of ``ChatOnlyUpstream``: chat, Responses and speech passed on to the
real upstream (the session's server: the real model, the real voice); the image operations,
which this service does not serve, answered by that upstream as OpenAI answers them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.admin import project_with_key, same_minute, today, until

ADMIN = "sk-admin-forwarded-91d4"
IMAGE_MODEL = "gpt-image-1"
IMAGE_PRICE = "0.04"
REFRESH = 0.2
TOKEN_PRICE = 1000  # USD per 1M tokens: a tenth of a cent a token
UNSET = 2**31 - 1


@pytest.fixture(scope="module")
def upstream(server):
    with ChatOnlyUpstream(server.api, also=("/v1/responses", "/v1/audio/speech"), images=True) as answering:
        yield answering


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    config = f"""
usage_flush_seconds: 0.3
prices:
  - {{model: {IMAGE_MODEL}, image: {IMAGE_PRICE}}}
  - {{model: tts-1, characters: 15000}}
  - {{model: {MODEL}, input: {TOKEN_PRICE}, output: {TOKEN_PRICE}}}
"""
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": upstream.api, "OPENAI_API_KEY": "sk-upstream-4c1d",
        "LLM_BACKEND_CONTROL_PLANE_REFRESH_SECONDS": str(REFRESH),
    }
    with keyed_server(tmp_path_factory.mktemp("forwarded"), [], [f"ops={ADMIN}"], env=env, config=config) as live:
        yield live


@pytest.fixture(scope="module")
def org(gateway):
    return admin_sdk(gateway, ADMIN).admin.organization





def test_image_generations_count_against_max_images_per_1_minute(gateway, org):
    project, key = project_with_key(org, "one-image")
    org.projects.rate_limits.update_rate_limit(f"rl-{IMAGE_MODEL}", project_id=project, max_images_per_1_minute=1)
    time.sleep(REFRESH + 0.1)
    client = sdk(gateway, key)
    same_minute()
    assert len(client.images.generate(model=IMAGE_MODEL, prompt="a red square").data) == 1
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as refused:
            client.images.generate(model=IMAGE_MODEL, prompt="a red square")
        assert refused.value.code == "rate_limit_exceeded"
        assert f"Rate limit reached for {IMAGE_MODEL} in project {project} on images per min (IPM): Limit 1" in refused.value.message


def test_images_are_priced_per_image_in_usage_and_costs(gateway, org):
    project, key = project_with_key(org, "images-priced")
    client = sdk(gateway, key)
    assert len(client.images.generate(model=IMAGE_MODEL, prompt="a red square", n=3).data) == 3
    edited = client.images.edit(model=IMAGE_MODEL, image=("square.png", b"\x89PNG not really", "image/png"), prompt="bluer")
    assert len(edited.data) == 1

    def used():
        results = today(org, "images", project)
        return sum(r.images for r in results) == 4 and results

    results = until(used)
    assert results and sum(r.num_model_requests for r in results) == 2, today(org, "images", project)
    costs = until(lambda: sum(Decimal(str(r.amount.value)) for r in today(org, "costs", project)))
    assert costs == 4 * Decimal(IMAGE_PRICE)
    [item] = today(org, "costs", project, group_by=["line_item"])
    assert (item.line_item, item.quantity, item.quantity_unit) == (f"{IMAGE_MODEL}, images", 4, "images")


def test_image_requests_hold_their_images_price_so_concurrent_ones_cannot_pass_a_spend_limit(gateway, org):
    """Each image request reserves ``n`` x the image's price before it is forwarded: 8 at
    once under a 10-cent limit at 4 cents an image make 2 images, the others refused, and
    a request for more images than remain is refused whole (it held nothing before: every
    one of the 8 was made, 32 cents)."""
    project, key = project_with_key(org, "images-held")
    org.projects.spend_limit.update(project, threshold_amount=10, currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)
    client = sdk(gateway, key)

    def generate(n: int) -> str:
        try:
            return f"{len(client.images.generate(model=IMAGE_MODEL, prompt='a red square', n=n).data)} made"
        except openai.RateLimitError as refused:
            return refused.code

    with pytest.raises(openai.RateLimitError) as refused:  # 3 images: 12 cents
        client.images.generate(model=IMAGE_MODEL, prompt="a red square", n=3)
    assert refused.value.code == "insufficient_quota" and "fewer images (n)" in refused.value.message
    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(generate, [1] * 8))
    assert answers == ["1 made"] * 2 + ["insufficient_quota"] * 6, answers
    costs = until(lambda: sum(Decimal(str(r.amount.value)) for r in today(org, "costs", project)))
    assert costs == 2 * Decimal(IMAGE_PRICE)


def test_responses_forwarded_by_a_pure_gateway_hold_to_the_models_limits_and_are_metered(gateway, org):
    project, key = project_with_key(org, "responses")
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, max_requests_per_1_minute=1)
    time.sleep(REFRESH + 0.1)
    client = sdk(gateway, key)
    same_minute()
    answer = client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, store=False)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, store=False)

    def used():
        results = today(org, "completions", project)
        return sum(r.num_model_requests for r in results) == 1 and results

    results = until(used)
    assert results and sum(r.output_tokens for r in results) == answer.usage.output_tokens, today(org, "completions", project)


def test_a_response_forwarded_by_a_pure_gateway_holds_its_most_under_a_hard_spend_limit(gateway, org, upstream):
    """Its body is not read here but for its model and cap: it holds its cap and a token per
    byte of its body. 20 cents hold one with a cap of 16 (under 100 tokens, 10 cents), not
    one with a cap of 300 (refused before the upstream is asked; it held nothing before, and
    was answered while the month's spend was under the limit)."""
    project, key = project_with_key(org, "responses-held")
    org.projects.spend_limit.update(project, threshold_amount=20, currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)
    client = sdk(gateway, key)
    assert client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, store=False).usage.output_tokens
    asked = len(upstream.requests)
    with pytest.raises(openai.RateLimitError) as refused:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=300, store=False)
    assert refused.value.code == "insufficient_quota" and "may cost up to" in refused.value.message
    assert len(upstream.requests) == asked


def test_speech_forwarded_to_an_upstream_voice_costs_its_characters(gateway, org):
    project, key = project_with_key(org, "speech")
    spoken = "One two three."
    assert sdk(gateway, key).audio.speech.create(model="tts-1", voice="alloy", input=spoken, response_format="wav").content

    def used():
        results = today(org, "audio_speeches", project)
        return sum(r.characters for r in results) == len(spoken) and results

    assert until(used), today(org, "audio_speeches", project)
    costs = until(lambda: sum(Decimal(str(r.amount.value)) for r in today(org, "costs", project)))
    assert costs == len(spoken) * Decimal(15000) / 1_000_000


def test_a_limit_this_service_cannot_count_is_refused_naming_it_and_not_stored(gateway, org, server):
    project, _ = project_with_key(org, "uncountable")
    # A pure gateway forwards the Batch API: the upstream runs (and counts) the lines.
    with pytest.raises(openai.BadRequestError) as refused:
        org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, batch_1_day_max_input_tokens=100)
    assert refused.value.param == "batch_1_day_max_input_tokens"
    # Without an upstream, no image operation is answered: there are no images to count.
    local = admin_sdk(server, "anything").admin.organization
    here = local.projects.create(name="no-images").id
    with pytest.raises(openai.BadRequestError) as refused:
        local.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=here, max_images_per_1_minute=1)
    assert refused.value.param == "max_images_per_1_minute"
    [shown] = [item for item in local.projects.rate_limits.list_rate_limits(here) if item.model == MODEL]
    assert shown.max_images_per_1_minute == UNSET
