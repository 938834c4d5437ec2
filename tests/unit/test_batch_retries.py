"""When the batch runner tries a line again: a passing refusal later (never before its
retry-after), one that will not pass soon at once as the line's answer."""

from llm_backend.serving.batches.retries import MAX_ATTEMPTS, MAX_RETRY_AFTER, RETRY_DELAY, retry_delay

LIMITED = {"error": {"code": "rate_limit_exceeded", "message": "Rate limit reached"}}


def test_a_passing_refusal_is_tried_again_with_a_doubling_delay():
    assert retry_delay(503, {"error": {}}, None, 1) == RETRY_DELAY
    assert retry_delay(503, {"error": {}}, None, 3) == RETRY_DELAY * 4


def test_a_retry_waits_for_the_answers_retry_after():
    assert retry_delay(429, LIMITED, 45, 1) == 45
    assert retry_delay(429, LIMITED, 1, 3) == RETRY_DELAY * 4


def test_a_refusal_that_will_not_pass_soon_is_final():
    assert retry_delay(429, LIMITED, MAX_RETRY_AFTER + 1, 1) is None  # a day's limit
    assert retry_delay(429, {"error": {"code": "insufficient_quota"}}, None, 1) is None  # a spend limit
    # An upstream's answer that could not be read was paid for: asking again pays again.
    assert retry_delay(502, {"error": {"code": "upstream_unreadable"}}, None, 1) is None


def test_a_client_mistake_or_the_last_attempt_is_final():
    assert retry_delay(400, {"error": {}}, None, 1) is None
    assert retry_delay(200, {}, None, 1) is None
    assert retry_delay(503, {"error": {}}, None, MAX_ATTEMPTS) is None
