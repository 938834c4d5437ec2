"""A static key keeps its tenant whatever happens to the key list, on SQLite and PostgreSQL:
the positional owners of an older version carried over at the upgrade, then keys removed,
added and reordered between restarts of a live server (auth/, migration 0009; the
migration itself, table by table: test_migrations.py)."""

from __future__ import annotations

import time
from pathlib import Path

import openai

from llm_backend.auth import derived_owner
from llm_backend.storage import Database, models
from tests.conftest import MODEL
from tests.storage.test_migrations import OLD_COMPLETION, at_revision
from tests.support.clients import keyed_server, sdk
from tests.support.server import LiveServer

KEY_A, KEY_B, KEY_C, ADMIN = "sk-identity-a-31f9", "sk-identity-b-8e02", "sk-identity-c-55d7", "sk-identity-admin"
USER = [{"role": "user", "content": "Name a colour."}]


def serve(workdir: Path, url: str, keys: list[str]) -> LiveServer:
    """This service on the database at ``url`` with ``keys`` (one data directory: the files' bytes)."""
    env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_EMBEDDING_MODEL": ""}
    return keyed_server(workdir, keys, [f"ops={ADMIN}"], env=env)


def missing(call) -> bool:
    try:
        call()
    except openai.NotFoundError:
        return True
    return False


def made_by(client: openai.OpenAI) -> dict:
    """One object of every family this service stores, made by ``client``'s key."""
    file = client.files.create(file=("mine.txt", b"mine"), purpose="assistants")
    return {
        "completion": client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2, store=True).id,
        "response": client.responses.create(model=MODEL, input="Hi", max_output_tokens=16).id,
        "conversation": client.conversations.create(metadata={"who": "a"}).id,
        "file": file.id,
        "store": client.vector_stores.create(name="mine").id,
    }


def sees(client: openai.OpenAI, objects: dict) -> dict[str, bool]:
    """Which of ``objects`` ``client`` reaches, family by family."""
    return {
        "completion": objects["completion"] in {c.id for c in client.chat.completions.list()},
        "response": not missing(lambda: client.responses.retrieve(objects["response"])),
        "conversation": not missing(lambda: client.conversations.retrieve(objects["conversation"])),
        "file": objects["file"] in {f.id for f in client.files.list()},
        "store": objects["store"] in {s.id for s in client.vector_stores.list()},
    }


def usage_owners(live: LiveServer, since: int) -> set[str]:
    usage = sdk(live, api_key=ADMIN, admin_api_key=ADMIN).admin.organization.usage
    page = usage.completions(start_time=since, group_by=["api_key_id"])
    return {result.api_key_id for bucket in page.data for result in bucket.results}


def _a_completion_of_key_0(db: Database) -> None:
    """A chat completion of the first static key, as version 0008 named its owner: ``key-0``."""
    with db.sessions.begin() as session:
        completion = models.StoredChatCompletion(
            id="chatcmpl-of-key-0", owner="key-0", model=MODEL, created=1700000000,
            request={"model": MODEL, "messages": USER, "store": True}, response={**OLD_COMPLETION, "id": "chatcmpl-of-key-0"},
        )
        completion.set_metadata({})
        session.add(completion)


def test_every_objects_owner_survives_the_upgrade_and_keys_reordered_removed_and_added(database_url, tmp_path):
    since = int(time.time()) - 60
    at_revision(database_url, "0008", _a_completion_of_key_0)
    older = "chatcmpl-of-key-0"
    # The upgrade: the first key's positional owner becomes A's owner, once.
    with serve(tmp_path, database_url, [KEY_A, f"bob={KEY_B}"]) as live:
        alice = sdk(live, api_key=KEY_A)
        assert [c.id for c in alice.chat.completions.list()] == [older]
        alices = made_by(alice)
        bobs = sdk(live, api_key=KEY_B).files.create(file=("bob.txt", b"bob"), purpose="assistants").id
    everything = dict.fromkeys(alices, True)
    nothing = dict.fromkeys(alices, False)

    # A's key removed, a new key put where it was: the newcomer inherits nothing.
    with serve(tmp_path, database_url, [KEY_C, f"bob={KEY_B}"]) as live:
        newcomer = sdk(live, api_key=KEY_C)
        assert sees(newcomer, alices) == nothing and newcomer.chat.completions.list().data == []
        assert sdk(live, api_key=KEY_B).files.retrieve(bobs).id == bobs
        # The usage A's requests recorded is still A's (flushed when the first server stopped).
        assert derived_owner(KEY_A) in usage_owners(live, since)

    # The keys reordered, A's back at another position: A finds everything again.
    with serve(tmp_path, database_url, [f"bob={KEY_B}", KEY_C, KEY_A]) as live:
        assert sees(sdk(live, api_key=KEY_A), alices) == everything
        assert older in {c.id for c in sdk(live, api_key=KEY_A).chat.completions.list()}
        assert sees(sdk(live, api_key=KEY_C), alices) == nothing
        assert sees(sdk(live, api_key=KEY_B), alices) == nothing
        assert sdk(live, api_key=KEY_B).files.retrieve(bobs).id == bobs
