"""Which stored objects a client reaches: the tenancy checks of every suite (a 404 is an
object the client's project does not own, as OpenAI answers for one that does not exist)."""

from __future__ import annotations

import openai


def reached(client: openai.OpenAI, objects: dict[str, str]) -> dict[str, bool]:
    """For each of ``objects`` (``completion``, ``file``, ``conversation``, ``batch`` -> an id),
    whether ``client`` can read it."""
    readers = {
        "completion": client.chat.completions.retrieve,
        "file": client.files.retrieve,
        "conversation": client.conversations.retrieve,
        "batch": client.batches.retrieve,
    }
    found = {}
    for kind, object_id in objects.items():
        try:
            readers[kind](object_id)
            found[kind] = True
        except openai.NotFoundError:
            found[kind] = False
    return found
