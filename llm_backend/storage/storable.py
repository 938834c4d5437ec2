"""The one guard at the storage boundary: text every database can hold.

PostgreSQL's text cannot hold NUL, its ``varchar(n)`` refuses longer values, and no
database driver encodes an unpaired surrogate (JSON allows all three). Found on a live
service: ``DELETE /v1/files/%00`` and a 300-character vector store name answered 500 on
PostgreSQL while SQLite answered 404 and 200. Rather than a check at each call site, every
text column is a ``StoredText`` and every JSON column goes through ``json_serializer``:

- compared with a value no row can hold (``column == value``, ``column.in_(values)``), the
  column matches nothing, in SQL's own terms: such an id names no object, on every database;
- written with one (an INSERT or UPDATE), it is OpenAI's 400 naming the field
  (``Database.run`` hands it on; the transaction is rolled back, nothing is stored).

The lengths are the columns' own, so they are the same on SQLite, which would store longer.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import String, Text, false
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..errors import unstorable


def problem(text: str, limit: int | None) -> str | None:
    """Why no database can hold ``text`` (within ``limit`` characters), or None."""
    if limit is not None and len(text) > limit:
        return "long"
    if "\x00" in text:
        return "nul"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return None


class StoredText(TypeDecorator):
    """A text column (``length`` characters at most, None: unbounded) that only ever holds
    storable text; ``param`` names the API field it stores, for the 400."""

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = String  # as TypeDecorator declares it: __init__ may swap in Text()
    cache_ok = True

    def __init__(self, length: int | None = None, param: str | None = None) -> None:
        super().__init__(length)
        if length is None:
            self.impl = Text()  # as the migrations made it: unbounded, not a varchar
        self.limit = length
        self.param = param

    class comparator_factory(TypeDecorator.Comparator[Any]):
        type: StoredText  # the comparator of a StoredText column

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            limit = self.type.limit
            if op is operators.eq and isinstance(other[0], str) and problem(other[0], limit):
                return false()
            if op is operators.in_op and isinstance(other[0], (list, tuple)):
                other = ([value for value in other[0] if not (isinstance(value, str) and problem(value, limit))], *other[1:])
            return super().operate(op, *other, **kwargs)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, str) and (why := problem(value, self.limit)):
            raise unstorable(why, self.param, value, self.limit)
        return value


def check(row: Any) -> None:
    """The 400 a flush of ``row`` (an ORM object) would raise, now: before work that the
    row only records (an upload's bytes)."""
    for column in row.__table__.columns:
        if isinstance(column.type, StoredText):
            column.type.process_bind_param(getattr(row, column.key), None)


def json_serializer(value: Any) -> str:
    """JSON columns' text: NUL is escaped (``\\u0000``, which PostgreSQL's ``json`` keeps);
    an unpaired surrogate, which it refuses, is OpenAI's 400."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise unstorable("surrogate", None) from None
    return text
