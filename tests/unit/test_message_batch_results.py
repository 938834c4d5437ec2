"""A Message Batch's stored output lines (OpenAI's batch output shape, serving/batches/output.py)
read as Anthropic's results: succeeded, errored (Anthropic's error body, its type from the
status), canceled and expired (the lines the batch never ran)."""

from llm_backend.serving.batches.output import answered, not_run
from llm_backend.families.messages.serving.batches import result


def test_a_200_is_succeeded_with_its_message():
    message = {"id": "msg_1", "type": "message", "content": []}
    assert result("a", answered("a", 200, message, "req_1")) == {"custom_id": "a", "result": {"type": "succeeded", "message": message}}


def test_an_error_is_errored_in_anthropics_shape():
    output = answered("b", 404, {"error": {"message": "The model `x` does not exist.", "type": "invalid_request_error"}}, "req_2")
    assert result("b", output)["result"] == {
        "type": "errored", "error": {"type": "error", "error": {"type": "not_found_error", "message": "The model `x` does not exist."}},
    }


def test_lines_never_run_are_canceled_or_expired():
    assert result("c", not_run("c", "cancelled"))["result"] == {"type": "canceled"}
    assert result("d", not_run("d", "expired"))["result"] == {"type": "expired"}
