"""Objects an upstream keeps belong to the key that created them through this service.

A forwarded request goes upstream with the service's own upstream key, so the upstream
cannot tell our tenants apart: every tenant would see, read and delete every other's files,
batches, vector stores... This module keeps them apart with one table of ids and owners
(``storage/forwarded_objects.py``), by rules that follow from the shape of the API rather
than a list per family, and without rewriting an id (the SDKs' round trips keep working;
LiteLLM's managed files rewrite ids into its own encoding and check family by family):

- **What an answer shows a tenant is theirs.** Every object in the answer to a forwarded
  POST (a JSON object with ``id`` and ``object``, at any depth, streamed events included)
  and every id the answer's objects name (``*_id``, ``*_file``, ``*_ids``, ``*_files``,
  ``fine_tuned_model(_checkpoint)``; in a read's answer, only those) becomes the caller's, unless it is
  recorded already (the first owner keeps it) or the request itself named it. A creation
  (a collection's POST) is the usual case; a batch's output file, a fine-tuning job's model
  or the thread ``createThreadAndRun`` made are the owner's once the owner's answer names
  them. (A read's answer may list objects that exist already, like a store's files: their
  ids are not taken.)
- **A path parameter names an owned object.** The first path parameter of the operation
  (the parent: ``/vector_stores/{vector_store_id}/files/{file_id}`` is checked by its store)
  must be the caller's, else 404 in OpenAI's words for a missing id - the same answer as for
  an id that exists nowhere; the upstream is not asked. An id never recorded is nobody's.
- **A request never names another's object.** A string anywhere in a JSON body, a form's
  text fields or the query that is a recorded id of another key gets the same 404 (``input_file_id`` of a
  batch, ``file_ids`` of a vector store, ``previous_response_id``, ``after``...).
- **A list shows the caller's objects only.** A list answered to a request without path
  parameters is filtered; the upstream's pages are read until ``limit`` of the caller's
  items and one more are found, so ``limit``, ``after``/``before`` and ``has_more`` stay true.
- Deleting an owned object through us forgets it.

A multipart body's text fields are read like a JSON body's (its files are not: they create,
they do not refer).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeGuard, cast
from urllib.parse import parse_qsl, urlencode

from .. import errors
from ..backends.base import Relayed, Stream, StreamedBody
from ..backends.upstream.event_frames import EventFrames, split
from ..json.scan import MAX_JSON_DEPTH, scan
from ..json.text import LARGE_BODY, MAX_VALUES, loads
from ..off_loop import off_loop
from ..storage.forwarded_objects import ForwardedObjects
from .claims import MAX_STREAMED_VALUES, claims, claims_of_text
from .form_fields import Unreadable
from .request_ids import body_strings
from .relayed import DONE, data_of, is_event_stream

log = logging.getLogger(__name__)

# A string that may be an id: file-abc, vs_abc, ft:gpt-4o-mini:org::abc (never prose).
ID_LIKE = re.compile(r"(?=.*[_:\-])[A-Za-z0-9][A-Za-z0-9_.:\-]{2,255}")
# Items asked of the upstream per further page of a filtered list (every OpenAI list takes 100).
PAGE = 100
# Ids of a request body looked up at once (a large body is checked as it is read).
CHECK_BATCH = 1000

# A further page of the same list: its query string -> the upstream's answer.
FetchPage = Callable[[bytes], Awaitable[Relayed]]


def _unreadable() -> bytes:
    # Imported here: the relay brings aiohttp, which a service without an upstream never loads.
    from ..backends.upstream.relay import openai_error_event

    log.warning("forwarded stream ended: an event of the upstream's could not be read")
    return openai_error_event(errors.upstream_unreadable())


def references(value: Any, field: str, found: dict[str, str]) -> dict[str, str]:
    """Every id-like string of a request body, with the field it was found in."""
    if isinstance(value, str):
        if ID_LIKE.fullmatch(value):
            found.setdefault(value, field)
    elif isinstance(value, list):
        for item in value:
            references(item, field, found)
    elif isinstance(value, dict):
        for name, item in value.items():
            references(item, name, found)
    return found


def _param_of(kind: str) -> str:
    """The name the API gives an id of ``kind`` (``file`` -> ``file_id``), for its 404."""
    return "model" if kind == "model" else kind.replace(".", "_") + "_id"


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-type" and b"json" in value for name, value in headers)


async def _whole(answer: Relayed, limit: int) -> bytes:
    """The answer's body, refused (502) past ``limit`` bytes: an upstream's answer is read
    whole here only up to the upstream's read limit, whatever it sends."""
    if answer.content is not None:
        return answer.content
    chunks = cast(Stream[bytes], answer.chunks)  # a relayed answer has its content or its chunks
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            if answer.close is not None:
                await answer.close()
            log.warning("a forwarded answer past %d bytes: refused, the guard cannot read it whole", limit)
            raise errors.upstream_unreadable()
    return bytes(body)


# An answer is read as deep as what it echoes of a request may make it (as a batch line's
# answer: ``http/batch_lines.py``).
ANSWER_DEPTH = 2 * MAX_JSON_DEPTH


async def _parsed(content: bytes) -> Any:
    """The answer's JSON value (None: not JSON, or of more values than are read whole), read
    as every lane reads JSON (``json/text.py``: scanned first, values bounded; a large one off
    the loop)."""
    try:
        return await off_loop(len(content) > LARGE_BODY, loads, content, MAX_VALUES, ANSWER_DEPTH, errors.too_many_values, False)
    except (ValueError, errors.OpenAIError):
        return None


class _TooMany(Exception):
    """More values than an answer is read whole for."""


def _too_many(limit: int) -> errors.OpenAIError:
    """``loads``' ``past_values``: an answer of many values told apart from one not JSON."""
    raise _TooMany


async def _shown(content: bytes, objects: bool) -> dict[str, str] | None:
    """What an answer shows (``claims``; None: it cannot be read), beside the loop when large:
    read whole as ``_parsed`` reads it, or past its values bound as it is parsed
    (``claims_of_text``: a Response's log probabilities may hold millions)."""
    return await off_loop(len(content) > LARGE_BODY, _shown_now, content, objects)


def _shown_now(content: bytes, objects: bool) -> dict[str, str] | None:
    try:
        return claims(loads(content, MAX_VALUES, ANSWER_DEPTH, _too_many, False), {}, objects)
    except _TooMany:
        pass
    except (ValueError, errors.OpenAIError):
        return None
    shape = scan(content, ANSWER_DEPTH, MAX_STREAMED_VALUES)
    if shape.depth > ANSWER_DEPTH or shape.values > MAX_STREAMED_VALUES:
        return None
    try:
        return claims_of_text(content, objects)
    except ValueError:
        return None


class Guard:
    """The rules above for one forwarded request of ``owner`` (a key)."""

    def __init__(
        self,
        objects: ForwardedObjects,
        owner: str,
        method: str,
        path_params: dict[str, str],
        query: bytes,
        read_limit: int,
        objectless: bool = False,
    ) -> None:
        self.objects = objects
        self.read_limit = read_limit  # the most of an answer read whole (``upstream_max_read_bytes``)
        self.objectless = objectless  # the operation's answers can hold no object (``objectless_operations``)
        self.owner = owner
        self.method = method
        self.path_params = path_params
        self.query = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        self.named: set[str] = set()  # what the request named: never claimed by its answer

    def upstream_query(self, query: bytes) -> bytes:
        """The query to send upstream: a list's ``limit`` raised to a full page, so that a
        few of the caller's items among many take one upstream page, not two."""
        limit = dict(self.query).get("limit", "")
        if self.method != "GET" or self.path_params or not limit.isdigit() or int(limit) >= PAGE:
            return query
        return urlencode([(name, str(PAGE) if name == "limit" else value) for name, value in self.query]).encode()

    @property
    def parent(self) -> tuple[str, str] | None:
        return next(iter(self.path_params.items()), None)

    async def check(self, content: bytes | StreamedBody | None, headers: list[tuple[bytes, bytes]]) -> None:
        """404 unless the path names the caller's object and nothing named is another's;
        400 for a body that cannot be read (``request_ids``: closed when unsure). The body
        is read as a stream and checked a batch of ids at a time: memory stays bounded."""
        named: dict[str, str] = {}
        if self.parent is not None:
            named[self.parent[1]] = self.parent[0]
            await self._check_named(named)
        for name, value in self.query:
            references(value, name, named)
        try:
            async for field, value in body_strings(content, headers):
                references(value, field, named)
                if len(named) >= CHECK_BATCH:
                    await self._check_named(named)
        except Unreadable as error:
            raise errors.unreadable_body(str(error)) from None
        await self._check_named(named)

    async def _check_named(self, named: dict[str, str]) -> None:
        """404 for the first of ``named`` (id -> field) that is another's; they are then
        remembered (never claimed by the answer) and ``named`` emptied."""
        owners = await self.objects.owners(named)
        if self.parent is not None and self.parent[1] in named:
            name, value = self.parent
            if owners.get(value, ("",))[0] != self.owner:
                raise errors.missing_object(name, value)
        for value, (owner, kind) in owners.items():
            if owner != self.owner:
                raise errors.missing_object(_param_of(kind), value, named[value] or None)
        self.named |= set(named)
        named.clear()

    async def answer(self, answer: Relayed, fetch_page: FetchPage) -> Relayed:
        """The upstream's ``answer`` as the caller may see it; what it shows, recorded. An
        answer that must be read (a list to filter, objects to record) and cannot be is
        refused (502), never passed on unread."""
        if not 200 <= answer.status < 300:
            return answer
        listing = self.method == "GET" and not self.path_params
        if self.objectless and not listing:
            return answer  # nothing in it to record: passed on unread
        # Never compressed: the upstream's client refuses such an answer (backends/upstream/http_client.py).
        if is_event_stream(answer) and answer.chunks is not None:
            return replace(answer, chunks=self._claimed(answer.chunks))
        if not _is_json(answer.headers) and not is_event_stream(answer) and not listing:
            return answer  # a file's bytes, speech...: no object in them
        content = await _whole(answer, self.read_limit)
        value: Any = None
        if listing or self.method == "DELETE":  # what the answer holds is read, not only what it shows
            value = await _parsed(content)
            if value is None:
                raise errors.upstream_unreadable()
            if listing and _is_list(value):
                page = await self._own_page(value, fetch_page)
                if isinstance(page, Relayed):
                    return page
                value, content = page, json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()
            shown: dict[str, str] | None = claims(value, {}, objects=self.method != "GET")
        else:
            shown = await _shown(content, objects=self.method != "GET")
        if shown is None:
            raise errors.upstream_unreadable()
        await self._record(shown)
        parent = self.parent
        deleted = isinstance(value, dict) and value.get("deleted") is True
        if self.method == "DELETE" and parent is not None and len(self.path_params) == 1 and deleted:
            await self.objects.forget(self.owner, parent[1])
        return Relayed(answer.status, answer.headers, content=content)

    async def _record(self, shown: dict[str, str]) -> None:
        # A read shows existing objects (a store's files...): only what they name is new
        # (``claims``' ``objects``).
        found = {object_id: kind for object_id, kind in shown.items() if object_id not in self.named}
        if found:
            await self.objects.claim(self.owner, found)
            self.named |= set(found)

    async def _claimed(self, chunks: AsyncIterator[bytes]) -> Stream[bytes]:
        """A stream passed on event by event as its events arrive whole; what each shows is
        recorded before the client can read it (and use the id). An event that cannot be
        read is not passed on: the stream ends there with OpenAI's error event, as a relayed
        stream failing midway does (``backends/upstream/relay.py``), at an event's end."""
        frames = EventFrames()  # bounded by the relay, which framed the stream (event_frames.py)
        async for chunk in chunks:
            read: list[bytes] = []
            for event in split(frames.feed(chunk)):
                if not await self._read(event):
                    yield b"".join(read) + _unreadable()
                    return
                read.append(event)
            if read:
                yield b"".join(read)
        if pending := frames.rest():  # the last event, without the blank line that ends one
            yield pending if await self._read(pending) else _unreadable()

    async def _read(self, event: bytes) -> bool:
        """Whether the event's data could be read; what it shows is recorded."""
        for data in data_of(event):
            if data == DONE:
                continue
            shown = await _shown(data.encode(), objects=self.method != "GET")
            if shown is None:
                return False
            await self._record(shown)
        return True

    async def _own_page(self, first: dict, fetch_page: FetchPage) -> dict | Relayed:
        """The page of the caller's items the client asked for, from as many upstream pages
        as it takes (a page that fails is answered as the upstream answered it)."""
        query = dict(self.query)
        backwards = "before" in query and "after" not in query
        cursor = "before" if backwards else "after"
        limit: int | None
        try:
            limit = int(query["limit"])
        except (KeyError, ValueError):
            # The upstream's default: a full first page shows it; a last one needs none.
            limit = len(first["data"]) if first.get("has_more") else None
        found: list[dict] = []
        page = first
        while True:
            items = [item for item in page["data"] if isinstance(item, dict) and isinstance(item.get("id"), str)]
            owners = await self.objects.owners(item["id"] for item in items)
            mine = [item for item in items if owners.get(item["id"], ("",))[0] == self.owner]
            found = mine + found if backwards else found + mine
            if (limit is not None and len(found) > limit) or not page.get("has_more") or not items:
                break
            following = {**query, cursor: items[0 if backwards else -1]["id"], "limit": str(max(limit or 0, PAGE))}
            answer = await fetch_page(urlencode(following).encode())
            if not 200 <= answer.status < 300:
                return answer
            next_page = await _parsed(await _whole(answer, self.read_limit))
            if not _is_list(next_page):
                raise errors.upstream_unreadable()
            page = next_page
        has_more = limit is not None and len(found) > limit
        if limit is not None and has_more:
            found = found[-limit:] if backwards else found[:limit]
        result = {**first, "data": found, "has_more": has_more}
        for field, index in (("first_id", 0), ("last_id", -1)):
            if field in first:
                result[field] = found[index]["id"] if found else None
        return result


def _is_list(value: Any) -> TypeGuard[dict]:
    return isinstance(value, dict) and value.get("object") == "list" and isinstance(value.get("data"), list)
