"""The ids a forwarded request's body names, read whatever its size or content type.

The tenant guard (``ownership.Guard``) must see every id a request could make the upstream
act on; a body it does not read is a body it cannot check. So every body is read as the
upstream would read it, as a stream in bounded memory (a JSON body padded past the 1 MB
that stays in memory was once passed unread, and another tenant's file was read through it):
- a multipart form: its text fields (its files create, they do not refer);
- a urlencoded form: its fields;
- anything else, any ``json`` type, no content type or another one: as JSON (OpenAI's
  API reads a body as JSON), by a streaming parser (ijson), every string looked at; each
  chunk scanned first (``json_scan.Scanner``): ijson's ``parse`` names each event's path
  (``item.item.…``), so its memory is quadratic in the depth (5,000 levels: +60 MB).
What cannot be read so is refused, never passed: JSON that does not parse (or has more than
one value) or nests deeper than ``MAX_JSON_DEPTH``, a form that does not parse, a charset
other than UTF-8, a ``Content-Encoding``. An object holding a key twice is refused too (400
``duplicate_key``, as on every lane: ``json/text.py``), found as it streams by
``json_text.KeyPaths``: the upstream reads the same bytes, and its parser may keep the
other value of the two. Its memory is the keys of the objects open at once, at most
``MAX_VALUES`` (more: unreadable); its time a step per event (measured on the shared
2-core machine: a 43 KB Codex request read in 0.97 -> 1.06 ms, 1 MiB of chat messages in
105 -> 130 ms).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import ijson
from python_multipart.multipart import parse_options_header

from ..backends.base import StreamedBody
from .. import errors
from ..json.feeding import Fed
from ..json.scan import MAX_JSON_DEPTH, Scanner
from ..json.text import MAX_VALUES, KeyPaths, RepeatedKey
from .form_fields import FIELD_LIMIT, TextFields, Unreadable

UTF8 = (b"", b"utf-8", b"utf8", b"us-ascii")


def _field(prefix: str) -> str:
    """The field a JSON string stands in, as ``references`` names it: ``file_ids.item`` ->
    ``file_ids`` (a list's items are named by the list)."""
    parts = prefix.split(".") if prefix else []
    while parts and parts[-1] == "item":
        parts.pop()
    return parts[-1] if parts else ""


async def _chunks(content: bytes | StreamedBody | None) -> AsyncIterator[bytes]:
    if isinstance(content, StreamedBody):
        async for chunk in content.chunks():
            yield chunk
    elif content:
        yield content


async def json_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str, Any]]:
    """ijson's (path, event, value) of a JSON document, parsed as it streams in, each chunk
    scanned first (``json_scan.Scanner``: past 64 levels refused before the parser names a
    path); what cannot be read is ``Unreadable``, a key twice in an object
    ``errors.duplicate_key``. A reader may stop early (the rest unread)."""
    events = ijson.sendable_list()
    fed = Fed(ijson.parse_coro(events, use_float=True), events)  # a long string's chunks held, not lexed again each
    shape = Scanner(MAX_JSON_DEPTH)
    paths = KeyPaths()
    empty = True
    try:
        async for chunk in chunks:
            empty = empty and not chunk.strip()
            shape.feed(chunk)
            if shape.past():
                raise Unreadable(f"a JSON body nested more than {MAX_JSON_DEPTH} levels deep")
            fed.send(chunk)
            for item in events:
                paths.event(item[1], item[2])
                yield item
            del events[:]
            if paths.held > MAX_VALUES:
                raise Unreadable(f"a JSON body with more than {MAX_VALUES} keys in the objects open at once")
        if empty:
            raise Unreadable("an empty JSON body")
        fed.close()
        for item in events:
            paths.event(item[1], item[2])
            yield item
    except ijson.JSONError:
        raise Unreadable("a JSON body that does not parse") from None
    except UnicodeDecodeError:
        raise Unreadable("a JSON body that is not UTF-8") from None
    except RepeatedKey as repeated:
        raise errors.duplicate_key(repeated.path or repeated.key) from None


async def json_strings(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str]]:
    """(field, value) of every string in a JSON document, parsed as it streams in."""
    async for prefix, event, value in json_events(chunks):
        if event == "string":
            yield _field(prefix), value


async def _form(chunks: AsyncIterator[bytes], content_type: bytes) -> list[tuple[str, str]]:
    fields = TextFields(content_type)
    async for chunk in chunks:
        fields.write(chunk)
    return fields.finish()


async def _urlencoded(chunks: AsyncIterator[bytes]) -> list[tuple[str, str]]:
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > FIELD_LIMIT:
            raise Unreadable(f"a urlencoded body longer than {FIELD_LIMIT} bytes")
    try:
        return parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Unreadable("a urlencoded body that does not parse") from None


async def body_strings(content: bytes | StreamedBody | None, headers: list[tuple[bytes, bytes]]) -> AsyncIterator[tuple[str, Any]]:
    """(field, value) of every string the body holds, JSON inside a form field parsed too
    (``video``: {"id": ...}); ``Unreadable`` for a body that cannot be read as the upstream
    would read it."""
    if not content:
        return
    found = dict(headers)
    if found.get(b"content-encoding", b"identity").strip().lower() != b"identity":
        raise Unreadable("a body with a Content-Encoding")
    kind, options = parse_options_header(found.get(b"content-type", b""))
    if options.get(b"charset", b"").lower() not in UTF8:
        raise Unreadable("a body in a charset other than UTF-8")
    if kind in (b"multipart/form-data", b"application/x-www-form-urlencoded"):
        fields = await (_form(_chunks(content), found[b"content-type"]) if kind == b"multipart/form-data" else _urlencoded(_chunks(content)))
        for name, value in fields:
            if value.lstrip().startswith(("{", "[")):
                try:
                    async for pair in json_strings(_chunks(value.encode())):
                        yield pair
                    continue
                except Unreadable:
                    pass  # text that only starts like JSON
            yield name, value
        return
    async for pair in json_strings(_chunks(content)):
        yield pair
