"""Every failure answers in OpenAI's error shape with OpenAI's status."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS
from tests.support.server import access_lines, log_size


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_unknown_path_is_404(server):
    error = assert_openai_error(httpx.get(server.api + "/no-such-thing", verify=TLS), 404)
    assert error["code"] == "unknown_url"


def test_unknown_path_outside_v1_is_404_json_not_html(server):
    assert_openai_error(httpx.get(server.base_url + "/index.html", verify=TLS), 404)


def test_wrong_method_is_405(server):
    error = assert_openai_error(httpx.put(server.api + "/models", verify=TLS), 405)
    assert error["code"] == "method_not_allowed"


def test_invalid_json_is_400(server):
    response = httpx.post(
        server.api + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"}, verify=TLS
    )
    assert "parse the JSON body" in assert_openai_error(response, 400)["message"]


def test_nested_validation_error_names_the_parameter(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}, {"role": "wizard", "content": "x"}]}
    error = assert_openai_error(httpx.post(server.api + "/chat/completions", json=body, verify=TLS), 400)
    assert error["param"] == "messages[1]" or error["param"].startswith("messages[1]")


def test_out_of_range_value_is_400_naming_it(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 5}
    error = assert_openai_error(httpx.post(server.api + "/chat/completions", json=body, verify=TLS), 400)
    assert error["param"] == "temperature"


# The servers started here answer before any model would (a body too big, a preflight): pure
# gateways, which load none.
GATEWAY = {"LLM_BACKEND_LOCAL_MODELS": "false"}


def test_body_over_the_limit_is_413(start_server):
    small = start_server(env={**GATEWAY, "LLM_BACKEND_MAX_BODY_BYTES": "2048"})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 4096}]}
    error = assert_openai_error(httpx.post(small.api + "/chat/completions", json=body, verify=TLS), 413)
    assert "2048" in error["message"]
    # A chunked body with no announced length is cut off too.
    chunks = (b"x" * 1024 for _ in range(4))
    streamed = httpx.post(small.api + "/chat/completions", content=chunks, headers={"content-type": "application/json"}, verify=TLS)
    assert_openai_error(streamed, 413)


def test_sdk_raises_the_matching_exception_classes(client, server):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=-5)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    with pytest.raises(openai.NotFoundError):
        client.get("/no-such-thing", cast_to=object)


def test_every_response_carries_a_request_id(server):
    ok = httpx.get(server.api + "/models", verify=TLS)
    bad = httpx.get(server.api + "/no-such-thing", verify=TLS)
    assert ok.headers["x-request-id"].startswith("req_")
    assert bad.headers["x-request-id"].startswith("req_")
    assert ok.headers["x-request-id"] != bad.headers["x-request-id"]


def test_log_lines_are_json_with_the_request_id(server):
    since = log_size(server)
    request_id = httpx.get(server.api + "/models", verify=TLS).headers["x-request-id"]
    # The access line is written just after the response is sent: waited for (access_lines).
    lines = access_lines(server, "/v1/models", since, expect=1)
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine and mine[0]["path"] == "/v1/models" and mine[0]["status"] == 200


def test_cors_preflight_is_answered_for_a_configured_origin(start_server):
    live = start_server(env={**GATEWAY, "LLM_BACKEND_CORS_ORIGINS": "http://localhost:3000"})
    response = httpx.options(
        live.api + "/chat/completions",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        verify=TLS,
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = httpx.options(
        live.api + "/chat/completions",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        verify=TLS,
    )
    assert "access-control-allow-origin" not in other.headers


def test_a_chunked_body_within_the_limit_is_served(server):
    import json

    body = json.dumps({"model": MODEL, "input": "hello"}).encode()
    chunks = (body[i : i + 7] for i in range(0, len(body), 7))
    response = httpx.post(server.api + "/embeddings", content=chunks, headers={"content-type": "application/json"}, verify=TLS)
    assert response.status_code == 200
    assert response.json()["data"][0]["embedding"]


CLIENT_MISTAKES = [
    ("POST", "/chat/completions", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("POST", "/chat/completions", {"json": {"model": MODEL, "messages": "no"}}),
    ("POST", "/chat/completions", {"json": {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}}),
    ("POST", "/chat/completions", {"content": b"x=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ("GET", "/chat/completions?metadata=x&limit=abc", {}),
    ("GET", "/chat/completions?order=sideways", {}),
    ("GET", "/chat/completions/chatcmpl-nothing", {}),
    ("GET", "/fine_tuning/jobs", {}),
    ("DELETE", "/models/smollm2", {}),
    ("GET", "/no-such-thing", {}),
]


def test_client_mistakes_are_answered_4xx_and_never_logged_as_errors(server):
    start = server.log_path.stat().st_size
    for method, path, options in CLIENT_MISTAKES:
        response = httpx.request(method, server.api + path, timeout=30, **options, verify=TLS)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
    access = access_lines(server, "/v1/no-such-thing", since=start, expect=1)
    assert access and access[0]["status"] == 404
    lines = server.log_path.read_bytes()[start:].decode(errors="replace").splitlines()
    errors = [line for line in lines if '"level": "error"' in line or '"level": "critical"' in line]
    assert errors == []
