"""Real stored objects for the fuzzer to aim at, so that get/update/delete/list of stored
objects reach their success paths and not only their 404s.

Objects are created through the API, as a client creates them (files uploaded, conversations
with items, stored responses and chat completions, vector stores holding a file), one pool
per path parameter. A fuzz case draws, per case, whether to keep schemathesis' generated
ids or to aim at real ones (``aim``: a draw seeded by the run's seed and the case itself,
so a failing case replays with its seed; schemathesis' example and coverage phases admit
no extra hypothesis strategy); ids that belong together (a conversation and one of its
items, a vector store and one of its files) are drawn together. A delete that succeeded
takes its object out of the pool and a new one is created, so later cases still find rows.

``FACTORIES`` names every path parameter a factory exists for; the conformance suite fails
for a served operation with a path parameter not in it (a new family needs a factory).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import MODEL
from tests.support.fuzz import SEED

# The one model the control plane's fuzz servers route (test_schemathesis.CONTROL_CONFIG).
CONTROL_MODEL = "fuzz-model"
ALERT = {"threshold_amount": 100, "currency": "USD", "interval": "month",
         "notification_channel": {"type": "email", "recipients": ["fuzz@example.com"]}}

# child parameter -> its parent: a child is drawn from the objects of the parent drawn with
# it (a conversation's items; a vector store's files and file batches).
PARENTS = {
    "item_id": "conversation_id", "file_id": "vector_store_id", "batch_id": "vector_store_id",
    "service_account_id": "project_id", "api_key_id": "project_id", "alert_id": "project_id",
}
# Children that are objects on their own too: a File outside any vector store, a Batch
# (``/batches/{batch_id}``) beside a vector store's file batch.
STANDALONE = {"file_id", "batch_id", "alert_id"}


class RealObjects:
    def __init__(self, api: str, headers: dict[str, str] | None = None) -> None:
        self.api = api
        self.client = httpx.Client(base_url=api, headers=headers or {}, timeout=120)
        # parameter -> ids; (parent, child) -> parent id -> its children's ids
        self.pools: dict[str, list[str]] = {}
        self.children: dict[tuple[str, str], dict[str, list[str]]] = {}

    # --- factories, one per path parameter (and the children of parents) ---

    def completion_id(self) -> str:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2, "store": True}
        return self._created("/chat/completions", json=body)

    def response_id(self) -> str:
        body = {"model": MODEL, "input": "Say hi.", "max_output_tokens": 16, "store": True, "metadata": {"fuzz": "yes"}}
        return self._created("/responses", json=body)

    def file_id(self) -> str:
        return self._created("/files", data={"purpose": "user_data"}, files={"file": ("fuzz.txt", b"Fuzzing finds bugs.\n")})

    def conversation_id(self) -> str:
        items = [{"type": "message", "role": "user", "content": "Hi"}, {"type": "message", "role": "assistant", "content": "Hello"}]
        conversation = self._created("/conversations", json={"items": items, "metadata": {"fuzz": "yes"}})
        listed = self.client.get(f"/conversations/{conversation}/items").json()["data"]
        self.children.setdefault(("conversation_id", "item_id"), {})[conversation] = [item["id"] for item in listed]
        return conversation

    def vector_store_id(self) -> str:
        file = self.file_id()
        store = self._created("/vector_stores", json={"name": "fuzz", "file_ids": [file]})
        batched = self.file_id()
        batch = self._created(f"/vector_stores/{store}/file_batches", json={"file_ids": [batched]})
        self.children.setdefault(("vector_store_id", "file_id"), {})[store] = [file, batched]
        self.children.setdefault(("vector_store_id", "batch_id"), {})[store] = [batch]
        return store

    def batch_id(self) -> str:
        """A batch of one short chat line: validating, running or ended when a case reaches it."""
        line = {"custom_id": "fuzz", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}}
        file = self._created("/files", data={"purpose": "batch"}, files={"file": ("fuzz.jsonl", json.dumps(line).encode())})
        body = {"input_file_id": file, "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": {"fuzz": "yes"}}
        return self._created("/batches", json=body)

    def upload_id(self) -> str:
        """A pending upload with one part of its two."""
        body = {"filename": "fuzz.txt", "purpose": "assistants", "bytes": 8, "mime_type": "text/plain"}
        upload = self._created("/uploads", json=body)
        self._created(f"/uploads/{upload}/parts", files={"data": ("blob", b"fuzz")})
        return upload

    def model(self) -> str:
        return MODEL

    def project_id(self) -> str:
        """A project (the fuzz server has no keys: everyone is its admin) with a service
        account and its key, the project's children."""
        project = self._created("/organization/projects", json={"name": "fuzz"})
        account = self.client.post(f"/organization/projects/{project}/service_accounts", json={"name": "fuzz-bot"}).json()
        self.children.setdefault(("project_id", "service_account_id"), {})[project] = [account["id"]]
        self.children.setdefault(("project_id", "api_key_id"), {})[project] = [account["api_key"]["id"]]
        alert = self._created(f"/organization/projects/{project}/spend_alerts", json=ALERT)
        self.children.setdefault(("project_id", "alert_id"), {})[project] = [alert]
        return project

    def alert_id(self) -> str:
        """The organisation's spend alert (a project's: its project's child)."""
        return self._created("/organization/spend_alerts", json=ALERT)

    def key_id(self) -> str:
        """An admin key."""
        return self._created("/organization/admin_api_keys", json={"name": "fuzz"})

    def _created(self, path: str, **kwargs: Any) -> str:
        response = self.client.post(path, **kwargs)
        assert response.status_code == 200, f"creating {path} for the fuzzer: {response.status_code} {response.text}"
        return response.json()["id"]

    # --- pools ---

    def fill(self, parameters: set[str], count: int = 3) -> None:
        """Create ``count`` objects for each of ``parameters`` that has a factory."""
        for name in sorted(parameters):
            factory = FACTORIES.get(name)
            if factory is not None and name not in self.pools and (name not in PARENTS or name in STANDALONE):
                self.pools[name] = [factory(self) for _ in range(count if name != "model" else 1)]

    def aim(self, case: Any) -> dict[str, str]:
        """Half the cases: the case's path parameters replaced by real ids. Returns what
        was aimed at."""
        parameters = case.path_parameters or {}
        rng = random.Random(f"{SEED}:{case.operation.label}:{parameters!r}:{case.query!r}:{str(case.body)[:2000]}")
        if not parameters or rng.random() < 0.5:
            return {}
        aimed: dict[str, str] = {}
        for name in parameters:
            if self.pools.get(name) and name not in PARENTS:
                aimed[name] = rng.choice(self.pools[name])
        for child, parent in PARENTS.items():
            if child in parameters and parent in aimed:
                owned = self.children.get((parent, child), {}).get(aimed[parent]) or []
                if owned:
                    aimed[child] = rng.choice(owned)
            elif child in parameters and parent not in parameters and self.pools.get(child):
                aimed[child] = rng.choice(self.pools[child])
        case.path_parameters.update(aimed)
        return aimed

    def after(self, case: Any, aimed: dict[str, str], status: int) -> None:
        """A successful delete of a real object: replace it in its pool."""
        if case.method.upper() != "DELETE" or status != 200 or not aimed:
            return
        deleted = case.operation.path.rstrip("}").rsplit("{", 1)[-1]
        parent = PARENTS.get(deleted)
        if parent in aimed:
            owned = self.children.get((parent, deleted), {}).get(aimed[parent], [])
            if aimed.get(deleted) in owned:
                owned.remove(aimed[deleted])
            return
        pool = self.pools.get(deleted)
        if pool and aimed.get(deleted) in pool:
            pool.remove(aimed[deleted])
            pool.append(FACTORIES[deleted](self))

    def close(self) -> None:
        self.client.close()


FACTORIES: dict[str, Callable[[RealObjects], str]] = {
    "completion_id": RealObjects.completion_id,
    "response_id": RealObjects.response_id,
    "file_id": RealObjects.file_id,
    "conversation_id": RealObjects.conversation_id,
    "item_id": lambda objects: "",  # a child: drawn from its conversation's items
    "batch_id": RealObjects.batch_id,  # and a child: a vector store's file batches
    "upload_id": RealObjects.upload_id,
    "vector_store_id": RealObjects.vector_store_id,
    "model": RealObjects.model,
    "project_id": RealObjects.project_id,
    "service_account_id": lambda objects: "",  # children: drawn from their project's
    "api_key_id": lambda objects: "",
    "key_id": RealObjects.key_id,
    "alert_id": RealObjects.alert_id,
    "rate_limit_id": lambda objects: f"rl-{CONTROL_MODEL}",
    # The organisation's people: this service has none, so no real object exists to aim
    # at; their operations answer 404 whatever the id (serving/admin/people.py).
    **{name: (lambda objects, name=name: f"{name.removesuffix('_id')}_fuzz") for name in (
        "user_id", "invite_id", "role_id", "group_id", "certificate_id",
    )},
}
