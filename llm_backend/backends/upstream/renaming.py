"""Our alias in place of the upstream's model id in what it answers (``relay.py``): the
``model`` of a completion or a chunk, the ``id`` of a model.

An event may be as long as the upstream's read limit (64 MiB), and reading it into objects
and writing it again held the GIL for about 0.3 s at 40 MiB (``json.dumps`` alone 0.23 s:
one C call, so not even a thread let ``/health`` through). Every answer seen writes the
field before any nested value (OpenAI's ``id``, ``object``, ``created``, ``model``, then
``choices``), so where the object opens with scalar members up to the field, the field's
value is found by an anchored match over those members alone and replaced in place: one
copy of the event, whatever its length. A whole answer may write it last instead, after
its one long value (an embeddings list: ``data``, ``model``, ``usage``): there it is found
from the end (``json/tail.py``). Any other shape is read and written whole.
"""

from __future__ import annotations

import functools
import json
import re

from ...json.tail import SCALAR, STRING, last_member

_MEMBER = rb"\s*+" + STRING + rb"\s*+:\s*+" + SCALAR + rb"\s*+,"


@functools.cache
def _leading(field: str) -> re.Pattern[bytes]:
    """An object whose scalar members before ``field`` lead to its value (group 1): at the
    top level, since nothing before it opens a nested value."""
    name = re.escape(json.dumps(field).encode())
    return re.compile(rb"\s*+\{(?:" + _MEMBER + rb")*?\s*+" + name + rb"\s*+:\s*+(" + SCALAR + rb")")


def with_model(data: bytes, field: str, model_id: str) -> bytes:
    """``data`` (a JSON object) with ``field`` set to ``model_id``; anything else as it came."""
    found = _leading(field).match(data) or last_member(data, field)
    if found is not None:
        view = memoryview(data)  # the answer copied once, into what is returned
        return b"".join((view[: found.start(1)], json.dumps(model_id).encode(), view[found.end(1) :]))
    rewritten = _rewritten(data, field, model_id)
    return data if rewritten is None else rewritten


def _rewritten(data: bytes, field: str, model_id: str) -> bytes | None:
    """``data`` read and written again with ``field`` renamed (None: no such field, or not a
    JSON object)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or field not in obj:
        return None
    obj[field] = model_id
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def events_with_model(events: bytes, model_id: str) -> bytes:
    """Whole server-sent events with ``model`` renamed in every JSON ``data:`` line; the
    events themselves when nothing changes."""
    leading, renamed = _leading("model"), json.dumps(model_id).encode()
    view = memoryview(events)  # the events copied once, into what is returned
    pieces: list[bytes | memoryview] = []
    done = 0  # where the bytes not yet in ``pieces`` start
    line = 0
    while line < len(events):
        end = events.find(b"\n", line)
        end = len(events) if end < 0 else end
        if events.startswith(b"data:", line, end):
            if (found := leading.match(events, line + 5, end)) is not None:
                pieces += [view[done : found.start(1)], renamed]
                done = found.end(1)
            elif events.find(b'"model"', line, end) >= 0:  # a rarer shape: read whole
                rewritten = _rewritten(events[line + 5 : end], "model", model_id)
                if rewritten is not None:
                    pieces += [view[done:line], b"data: ", rewritten]
                    done = end
        line = end + 1
    if not pieces:
        return events
    pieces.append(view[done:])
    return b"".join(pieces)
