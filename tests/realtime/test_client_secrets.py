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
from tests.support.clients import sdk
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
    created = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "create", "--name", "temp"],
        capture_output=True, text=True, env=keyed.env, check=True,
    )
    key = created.stdout.split()[-1]
    secret = sdk(keyed, api_key=key).realtime.client_secrets.create(session={"type": "transcription"}).value
    with sdk(keyed, api_key=secret).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
    key_id = next(line.split()[0] for line in subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "list"], capture_output=True, text=True, env=keyed.env, check=True
    ).stdout.splitlines() if "temp" in line)
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
