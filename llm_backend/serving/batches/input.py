"""A batch's input file, checked as OpenAI checks it before anything runs.

What makes the whole batch ``failed`` (each problem an entry of its ``errors``, with the
line): a line that is not JSON, a missing ``custom_id``/``method``/``url``/``body``, a
``custom_id`` used twice, a method other than POST, a ``url`` other than the batch's
``endpoint``, ``stream: true``, a body without a parameter the endpoint requires (the
document's ``required``), a model this service does not know, lines naming different
models (a batch runs on one model, as at OpenAI), and the size limits (200 MB, 50 000
requests, 50 000 embedding inputs; blank lines are not free either: 50 000 of them at most).
Reading stops at the first line past a count (a 200 MB file of 3-byte lines is 70 M
requests: counting them all took minutes), and the ``custom_id``s seen are kept as digests,
so the check's memory is bounded by the counts, not by the ids' lengths. Anything else wrong with a body is that line's answer
(its 400, in the error file), found when it runs through the endpoint's own validation.

The wording and codes are OpenAI's where its answers are known (``invalid_json_line``,
``missing_required_parameter``, ``invalid_url``, ``streaming_unsupported``,
``model_not_found``, ``invalid_request`` for a missing file or body parameter).
The file is read twice, line by line (checked, then stored), never whole in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import OpenAIError
from ...json.text import loads
from ...json.types import Json


MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_REQUESTS = 50_000
MAX_BLANK_LINES = 50_000
MAX_EMBEDDING_INPUTS = 50_000
MAX_ERRORS = 100  # listed in the batch's ``errors``; a file of 50 000 bad lines stops there
FAMILIES = {
    "/v1/chat/completions": "Chat Completions",
    "/v1/completions": "Completions",
    "/v1/embeddings": "Embeddings",
    "/v1/responses": "Responses",
    "/v1/moderations": "Moderations",
}
ENVELOPE = (("custom_id", str, "a string"), ("method", str, "a string"), ("url", str, "a string"), ("body", dict, "an object"))


def error(code: str, message: str, param: str | None = None, line: int | None = None) -> Json:
    """One entry of a batch's ``errors.data``."""
    return {"code": code, "message": message, "param": param, "line": line}


def file_missing(file_id: str) -> Json:
    return error(
        "invalid_request", f"Cannot find file {file_id}, or this API key does not have access to it.", "file_id"
    )


def not_a_batch_file(file_id: str, purpose: str) -> Json:
    return error(
        "invalid_request",
        f"File {file_id} has purpose '{purpose}'; a batch's input file must be uploaded with purpose 'batch'.",
        "file_id",
    )


def too_large(size: int) -> Json:
    return error(
        "invalid_request",
        f"The input file is {size} bytes; a batch's input file can be at most {MAX_FILE_BYTES} bytes (200 MB).",
        "file_id",
    )


@dataclass
class Checked:
    """What checking found: the problems (none: the batch may run), the batch's model and
    how many requests it has."""

    errors: list[Json] = field(default_factory=list)
    model: str | None = None
    requests: int = 0
    embedding_inputs: int = 0

    def add(self, entry: Json) -> None:
        if len(self.errors) < MAX_ERRORS or entry["line"] is None:  # the file's own problems are always told
            self.errors.append(entry)


# Read past a line over the limit, without holding it.
SKIP_BYTES = 1 << 20


def _lines(path: Path, limit: int | None = None) -> Iterator[tuple[int, bytes | int | None]]:
    """(1-based number, bytes) of every line, None for a blank one; a line longer than
    ``limit`` bytes is never held: its size instead (issue #33: a line is a request, and a
    request body has ``max_body_bytes``)."""
    with open(path, "rb") as source:
        number = 0
        while raw := source.readline(-1 if limit is None else limit + 1):
            number += 1
            if limit is not None and len(raw) > limit and not raw.endswith(b"\n"):
                size = len(raw)
                while (rest := source.readline(SKIP_BYTES)) and not rest.endswith(b"\n"):
                    size += len(rest)
                yield number, size + len(rest)
            else:
                yield number, raw if raw.strip() else None


def _parsed(raw: bytes, max_values: int | None = None) -> Any:
    """A line's JSON, None if it is not JSON; ``OpenAIError`` deeper than ``MAX_JSON_DEPTH``
    or past ``max_values`` values and keys. Read by ``json_text.loads``: scanned before
    anything is built (``json/scan.py``), a line of many values in slices (one
    ``json.loads`` of an 8 MB line held the GIL 0.25 s)."""
    try:
        return loads(raw, max_values)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None


def _check_line(checked: Checked, number: int, request: Any, endpoint: str, required: list[str],
                known_model: Callable[[str], bool], seen: set[bytes]) -> None:
    if not isinstance(request, dict):
        checked.add(error("invalid_json_line", "This line is not parseable as valid JSON.", None, number))
        return
    for name, kind, described in ENVELOPE:
        if name not in request:
            checked.add(error("missing_required_parameter", f"Missing required parameter: '{name}'.", name, number))
            return
        if not isinstance(request[name], kind):
            checked.add(error("invalid_type", f"Invalid type for '{name}': expected {described}.", name, number))
            return
    custom_id, body = request["custom_id"], request["body"]
    digest = hashlib.blake2b(custom_id.encode(errors="surrogatepass"), digest_size=16).digest()
    if "\x00" in custom_id:
        checked.add(error("invalid_value", "Invalid 'custom_id': it must not hold NUL characters.", "custom_id", number))
    elif digest in seen:
        checked.add(error(
            "duplicate_custom_id",
            "The custom_id for this request is a duplicate of another request. The custom_id parameter must be "
            "unique for each request in a batch.",
            "custom_id",
            number,
        ))
    seen.add(digest)
    if request["method"] != "POST":
        checked.add(error("invalid_value", "Invalid 'method': only 'POST' is supported.", "method", number))
    if request["url"] != endpoint:
        checked.add(error("invalid_url", "The URL provided for this request does not match the batch endpoint.", "url", number))
        return
    family = FAMILIES.get(endpoint, endpoint)
    if body.get("stream"):
        checked.add(error("streaming_unsupported", f"{family}: Streaming is not supported in the Batch API.", "body.stream", number))
    if body.get("background"):
        checked.add(error("invalid_request", f"{family}: Background mode is not supported in the Batch API.", "body.background", number))
    for name in required:
        if name not in body:
            checked.add(error("invalid_request", f"{name.capitalize()} parameter is required.", f"body.{name}", number))
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        checked.add(error("invalid_type", "Invalid type for 'body.model': expected a string.", "body.model", number))
    elif isinstance(model, str):
        if not known_model(model):
            checked.add(error("model_not_found", f"The provided model '{model}' is not supported by the Batch API.", "body.model", number))
        elif checked.model is None:
            checked.model = model
        elif model != checked.model:
            checked.add(error(
                "model_mismatch",
                f"All requests of a batch must use one model: this line names '{model}', an earlier one '{checked.model}'.",
                "body.model",
                number,
            ))
    if endpoint == "/v1/embeddings":
        inputs = body.get("input")
        checked.embedding_inputs += len(inputs) if isinstance(inputs, list) and not all(isinstance(i, int) for i in inputs) else 1


def check(
    path: Path,
    endpoint: str,
    required: list[str],
    known_model: Callable[[str], bool],
    max_line_bytes: int | None = None,
    max_line_values: int | None = None,
) -> Checked:
    """Every line of the input file at ``path`` checked (blocking: call it in a thread); a
    line over ``max_line_bytes`` or ``max_line_values`` (the live body's limits) is refused
    as that request would be."""
    checked = Checked()
    seen: set[bytes] = set()
    blank = 0
    for number, raw in _lines(path, max_line_bytes):
        if raw is None:
            blank += 1
            if blank > MAX_BLANK_LINES:
                checked.add(error("too_many_tasks", f"The input file has more than {MAX_BLANK_LINES} blank lines."))
                return checked
            continue
        checked.requests += 1
        if checked.requests > MAX_REQUESTS or len(checked.errors) >= MAX_ERRORS:
            break  # the rest is never read: the batch fails whatever it holds
        if isinstance(raw, int):
            checked.add(error(
                "request_too_large",
                f"This line is {raw} bytes: a request body can be at most {max_line_bytes} bytes.",
                None,
                number,
            ))
            continue
        try:
            request = _parsed(raw, max_line_values)
        except OpenAIError as refused:  # too deep, past max_body_values, a key twice: never built
            checked.add(error(refused.code or "invalid_body", refused.message, refused.param, number))
            continue
        _check_line(checked, number, request, endpoint, required, known_model, seen)
    if not checked.requests:
        checked.add(error("empty_file", "The input file is empty: a batch needs at least one request."))
    elif checked.requests > MAX_REQUESTS:
        checked.add(error("too_many_tasks", f"The input file has more than {MAX_REQUESTS} requests; a batch can have at most {MAX_REQUESTS}."))
    elif checked.embedding_inputs > MAX_EMBEDDING_INPUTS:
        checked.add(error(
            "too_many_tasks",
            f"The requests have {checked.embedding_inputs} embedding inputs; a batch can have at most {MAX_EMBEDDING_INPUTS}.",
        ))
    return checked


def requests(path: Path) -> Iterator[tuple[str, Json]]:
    """(custom_id, body) of every request of a checked input file, in order."""
    for _, raw in _lines(path):
        if isinstance(raw, bytes):  # no limit: a line, or None for a blank one
            request = loads(raw)
            yield request["custom_id"], request["body"]
