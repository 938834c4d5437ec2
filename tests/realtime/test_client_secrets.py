"""Ephemeral client secrets (``POST /v1/realtime/client_secrets``): good for ``/v1/realtime``
only, as the key that made them, for the session they were made for, until they expire or
their key is revoked; a browser sends one as a WebSocket subprotocol."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import MODEL
from tests.support.clients import managed_key, sdk
from tests.support.realtime import events_until

ADMIN = "sk-secrets-admin"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    from tests.support.clients import keyed_server

    with keyed_server(tmp_path_factory.mktemp("secrets"), ["team=sk-secrets-user"], [ADMIN]) as live:
        yield live


def test_a_secret_opens_its_session_as_its_key(keyed):
    made = sdk(keyed, api_key="sk-secrets-user").realtime.client_secrets.create(
        session={"type": "realtime", "model": MODEL, "instructions": "Answer like a pirate."}
    )
    assert made.value.startswith("ek_") and made.expires_at > time.time() and made.session.instructions == "Answer like a pirate."
    with sdk(keyed, api_key=made.value).realtime.connect(model=MODEL) as connection:
        [created] = events_until(connection, "session.created")
    assert created["session"]["instructions"] == "Answer like a pirate."
    # Only for /v1/realtime: anything else refuses it.
    with pytest.raises(openai.AuthenticationError):
        sdk(keyed, api_key=made.value).models.list()
    # A browser's way: the secret as a subprotocol, "realtime" chosen.
    url = keyed.base_url.replace("http://", "ws://") + "/v1/realtime"
    with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{made.value}"]) as socket:
        assert socket.subprotocol == "realtime" and '"session.created"' in socket.recv(timeout=30)


def test_a_forged_expired_or_orphaned_secret_is_refused(keyed, tmp_path):
    user = sdk(keyed, api_key="sk-secrets-user")
    made = user.realtime.client_secrets.create(session={"type": "transcription"}, expires_after={"anchor": "created_at", "seconds": 10})
    middle = len(made.value) // 2
    forged = made.value[:middle] + ("A" if made.value[middle] != "A" else "B") + made.value[middle + 1 :]
    for token in (forged, "ek_nothing.here"):
        with pytest.raises(InvalidStatus) as refused:
            with sdk(keyed, api_key=token).realtime.connect(extra_query={"intent": "transcription"}):
                pass
        assert refused.value.response.status_code == 401
    # A secret of a managed key stops working when the key is revoked.
    key, key_id = managed_key(keyed, "temp")
    secret = sdk(keyed, api_key=key).realtime.client_secrets.create(session={"type": "transcription"}).value
    with sdk(keyed, api_key=secret).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
    subprocess.run([sys.executable, "-m", "llm_backend", "keys", "revoke", key_id], env=keyed.env, check=True, capture_output=True)
    with pytest.raises(InvalidStatus):
        with sdk(keyed, api_key=secret).realtime.connect(extra_query={"intent": "transcription"}):
            pass


def test_a_secret_for_a_session_that_cannot_be_is_refused_naming_the_field(keyed):
    response = httpx.post(
        keyed.api + "/realtime/client_secrets",
        headers={"Authorization": "Bearer sk-secrets-user"},
        json={"session": {"type": "realtime", "model": MODEL, "audio": {"output": {"voice": "nobody"}}}},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "session.audio.output.voice"


def test_a_secret_holds_nothing_a_guess_of_its_key_can_be_tested_against(keyed):
    """The browser a secret is made for must learn nothing of the key: no digest of it (the
    secret used to carry sha256(key) in clear, and a short key fell to a brute force at
    once), nor anything else a function of the key alone - two secrets of one key for one
    session share no run of 8 bytes (a fresh nonce each, sealed under the server's key)."""
    import base64
    import hashlib

    key = "sk-secrets-user"
    user = sdk(keyed, api_key=key)
    tokens = [user.realtime.client_secrets.create(session={"type": "transcription"}).value for _ in range(2)]
    bodies = [token.removeprefix("ek_") for token in tokens]
    sealed = [base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) for body in bodies]
    for algorithm in ("sha256", "sha1", "md5", "sha512", "blake2b"):
        digest = hashlib.new(algorithm, key.encode()).digest()
        for form in (digest, digest.hex().encode(), base64.b64encode(digest), base64.urlsafe_b64encode(digest).rstrip(b"=")):
            assert all(form[:16] not in secret for secret in sealed), algorithm
            assert all(form[:16].decode(errors="ignore") not in token for token in tokens), algorithm
    first, second = sealed
    assert not any(first[start : start + 8] in second for start in range(len(first) - 8))


def test_a_secret_with_characters_a_token_cannot_have_is_refused_as_any_other(keyed):
    """A header is the client's to fill: ``ek_abc.é`` used to be an unauthenticated 500
    with a traceback logged each time."""
    from tests.support.server import log_size

    since = log_size(keyed)
    url = keyed.base_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    for header in ("Bearer ek_abc.\u00e9", "Bearer ek_\u00e9\u00e9\u00e9", "Bearer ek_"):
        with pytest.raises(InvalidStatus) as refused:
            with connect(url, additional_headers={"Authorization": header.encode().decode("latin-1")}):
                pass
        assert refused.value.response.status_code == 401
        assert b'"invalid_api_key"' in refused.value.response.body
    assert "Traceback" not in keyed.log()[since:]


def test_a_function_tool_without_a_name_is_refused_naming_it(keyed):
    """Used to be a 500 with a traceback: a client secret's session, and a session.update."""
    response = httpx.post(
        keyed.api + "/realtime/client_secrets",
        headers={"Authorization": "Bearer sk-secrets-user"},
        json={"session": {"type": "realtime", "model": MODEL, "tools": [{"type": "function", "parameters": {}}]}},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "session.tools[0].name"
    with sdk(keyed, api_key="sk-secrets-user").realtime.connect(model=MODEL) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={"type": "realtime", "tools": [{"type": "function"}]})
        error = connection.recv().model_dump()
    assert error["type"] == "error" and error["error"]["param"] == "session.tools[0].name"


def test_a_secret_for_a_session_past_its_bytes_is_refused(keyed):
    # The secret carries its whole session: 100,000 repeats of an include (4.5 MB of JSON,
    # within a body) were sealed into a 4.9 MB secret on the event loop (8 MiB: 11 MB).
    response = httpx.post(
        keyed.api + "/realtime/client_secrets",
        headers={"Authorization": "Bearer sk-secrets-user"},
        json={"session": {"type": "transcription", "include": ["item.input_audio_transcription.logprobs"] * 100_000}},
        timeout=30,
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (400, "session_config_too_large", "session")
