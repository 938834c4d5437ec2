"""A thinking block's signature binds its text to the tenant it was written for, and a block
sent back that does not verify for the tenant sending it is Anthropic's 400
(families/messages/serving/signatures.py, issue #56)."""

from __future__ import annotations

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.families.messages.serving.signatures import ThinkingSignatures

KEY = b"server key"
THOUGHT = "9.8 is 9.80, and 0.80 > 0.11."


def sent_back(signature: str, thinking: str = THOUGHT) -> dict:
    return {"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "9.11 or 9.8?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": thinking, "signature": signature},
                                          {"type": "text", "text": "9.8."}]},
        {"role": "user", "content": "Why?"},
    ]}


def refusal(signatures: ThinkingSignatures, request: dict) -> OpenAIError:
    with pytest.raises(OpenAIError) as raised:
        signatures.check(request)
    return raised.value


def test_a_tenants_own_signature_verifies():
    mine = ThinkingSignatures(KEY, "proj_a")
    mine.check(sent_back(mine.sign(THOUGHT)))


def test_another_tenants_signature_is_anthropics_400():
    theirs = ThinkingSignatures(KEY, "proj_b").sign(THOUGHT)
    error = refusal(ThinkingSignatures(KEY, "proj_a"), sent_back(theirs))
    assert (error.status, error.message) == (400, "messages.1.content.0: Invalid `signature` in `thinking` block")
    assert error.param == "messages[1].content[0].signature"


def test_a_signature_of_other_text_does_not_verify():
    mine = ThinkingSignatures(KEY, "proj_a")
    assert refusal(mine, sent_back(mine.sign(THOUGHT), thinking=THOUGHT + " So 9.11.")).status == 400


@pytest.mark.parametrize("signature", ["", "forged", "AAAA" * 11, "é", "\ud800"])
def test_a_forged_signature_does_not_verify(signature):
    assert refusal(ThinkingSignatures(KEY, "proj_a"), sent_back(signature)).status == 400


def test_another_servers_signature_does_not_verify():
    other = ThinkingSignatures(b"another key", "proj_a").sign(THOUGHT)
    assert refusal(ThinkingSignatures(KEY, "proj_a"), sent_back(other)).status == 400


def test_a_redacted_thinking_block_is_refused_none_being_this_services():
    request = sent_back("")
    request["messages"][1]["content"][0] = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
    error = refusal(ThinkingSignatures(KEY, "proj_a"), request)
    assert error.message == "messages.1.content.0: Invalid `data` in `redacted_thinking` block"


def test_a_tenant_and_text_never_read_as_another_pair():
    assert ThinkingSignatures(KEY, "ab").sign("c") != ThinkingSignatures(KEY, "a").sign("bc")
