"""``POST /v1/responses/compact``: the local model condenses a conversation into one
``compaction`` item that later requests carry in their ``input`` (``summary.py``).

As at OpenAI, the output keeps the user's own messages and adds the compaction item. Nothing
is stored: the compacted items are the client's to send back.
"""

from __future__ import annotations

import time

from ...json.types import Json
from ..services import Services
from . import objects, service
from .items import new_id, normalize
from .summary import summarized


async def compact(services: Services, owner: str, body: Json) -> Json:
    backend = service.checked_backend(services, body)
    history = await service.history(services, owner, body)
    conversation = [*history, *normalize(body.get("input"))]
    item, usage = await summarized(backend, body["model"], conversation)
    kept = [said for said in conversation if said.get("type", "message") == "message" and said.get("role") == "user"]
    return {
        "id": new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, item],
        "usage": objects.usage(usage),
    }
