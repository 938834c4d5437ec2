"""A batch's output lines and its output and error files, in OpenAI's shapes.

Each answered line becomes ``{"id": "batch_req_...", "custom_id", "response":
{"status_code", "request_id", "body"}, "error": null}``: a 200 goes to the output file,
any other status to the error file with the endpoint's error body as its ``body`` (as
OpenAI writes a line its endpoint refused). A line that never ran (the batch was cancelled
or expired first) goes to the error file with ``response: null`` and an ``error`` whose code
is ``batch_cancelled`` or ``batch_expired``. A batch refused mid-way
(``serving/batch_lines.py``) answers each line not answered yet with the refusal
(``refuse_unanswered``).

The files are written when the batch ends, from the stored lines, in input order, streamed
(never whole in memory). Their ids are derived from the batch's, so a process that takes
over a batch whose finalizing was cut off finds the file already written instead of writing
a second one; and two processes ending one batch at once (one whose lease ran out unseen,
and the one that took it over) each write their bytes under a name of their own: the first
row inserted is the file, the other process removes only its own bytes
(``storage/files.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ...json.types import Json
from ...storage.batches import MESSAGE_BATCHES
from ...storage.files import FileExists

if TYPE_CHECKING:
    from ...storage.batches import BatchStore, Claimed
    from ...storage.files import FileStore

WRITE_CHUNK = 1 << 20
NOT_RUN = {
    "cancelled": ("batch_cancelled", "This request was not executed: the batch was cancelled before it ran."),
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
}


def answered(custom_id: str, status: int, body: Json, request_id: str) -> Json:
    return {
        "id": "batch_req_" + secrets.token_hex(16),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }


def not_run(custom_id: str, ending: str) -> Json:
    code, message = NOT_RUN[ending]
    return {"id": "batch_req_" + secrets.token_hex(16), "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}


def usage_of(body: Json) -> dict[str, int]:
    """The tokens of an answer, as the batch's ``usage`` sums them (chat and completions:
    prompt/completion tokens; Responses: input/output tokens; embeddings: prompt tokens)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return {}

    def number(*keys: str, within: Any = usage) -> int:
        for key in keys:
            value = within.get(key) if isinstance(within, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return 0

    input_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    output_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    return {
        "input_tokens": number("prompt_tokens", "input_tokens"),
        "cached_tokens": number("cached_tokens", within=input_details),
        "output_tokens": number("completion_tokens", "output_tokens"),
        "reasoning_tokens": number("reasoning_tokens", within=output_details),
    }


def _file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


def _encoded(lines: Iterator[Json]) -> Iterator[bytes]:
    buffer = bytearray()
    for line in lines:
        buffer += json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        if len(buffer) >= WRITE_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def write_files(store: BatchStore, files: FileStore, batch: Claimed) -> dict[str, str]:
    """The output and error files of a batch that ended (each only if it has lines), as
    ``output_file_id`` / ``error_file_id`` (blocking: call it in a thread). A Message Batch
    has none: its results are read from its lines (``families/messages/serving/batches.py``), and
    its owner's Files list never shows them."""
    written: dict[str, str] = {}
    if batch.endpoint == MESSAGE_BATCHES:
        return written
    expiry = batch.output_expires_after
    expires_at = int(time.time()) + int(expiry["seconds"]) if expiry else None
    for kind, failed in (("output", False), ("error", True)):
        if not store.has_outputs(batch.seq, failed):
            continue
        file_id = _file_id(batch.id, kind)
        if files.get(batch.owner, file_id) is None:
            with contextlib.suppress(FileExists):  # another process wrote it first: its file stands
                files.create(batch.owner, f"{batch.id}_{kind}.jsonl", "batch_output",
                             _encoded(store.outputs(batch.seq, failed)), "application/jsonl", max_bytes=1 << 62,
                             expires_at=expires_at, file_id=file_id)
        written[f"{kind}_file_id"] = file_id
    return written


def refuse_unanswered(store: BatchStore, seq: int, status: int, body: Json) -> int:
    """Answer every line of batch ``seq`` not answered yet with the refusal (blocking: the
    runner runs it with ``Database.run``); how many were."""
    refused = 0
    for line, custom_id in store.unanswered(seq):
        refused += store.answer(seq, line, answered(custom_id, status, body, "req_" + secrets.token_hex(16)), True, {})
    return refused
