"""Batch input files and waiting for batches, for every suite and the bench."""

from __future__ import annotations

import json
import time
from typing import Any

import openai

ENDED = ("completed", "failed", "expired", "cancelled")


def line(custom_id: str, body: dict[str, Any], url: str = "/v1/chat/completions", **envelope: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body, **envelope}


def chat_lines(count: int, model: str, max_tokens: int = 2, prefix: str = "r") -> list[dict[str, Any]]:
    """``count`` short chat requests, each prompt its own."""
    return [
        line(f"{prefix}{i}", {"model": model, "messages": [{"role": "user", "content": f"Say the number {i}."}], "max_tokens": max_tokens})
        for i in range(count)
    ]


def jsonl(lines: list[Any]) -> bytes:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines).encode()


def submit(client: openai.OpenAI, lines: list[Any], endpoint: str = "/v1/chat/completions", **options: Any):
    """Upload ``lines`` as a batch input file and create the batch."""
    uploaded = client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h", **options)


def wait(client: openai.OpenAI, batch_id: str, timeout: float = 300, until: tuple[str, ...] = ENDED):
    deadline = time.monotonic() + timeout
    while (batch := client.batches.retrieve(batch_id)).status not in until:
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status}: {batch.request_counts}"
        time.sleep(0.25)
    return batch


def file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(text) for text in client.files.content(file_id).text.splitlines()]
