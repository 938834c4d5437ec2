"""The text fields of a multipart body, its files skipped (python-multipart's push parser):
what a forwarded upload names (``file_id`` of a container file, ``consent`` of a voice) is
read without copying the uploaded bytes, fed in chunks from a body of any size.

Closed when unsure: a body that does not parse as a form, a text field longer than
``FIELD_LIMIT`` or a part in a transfer encoding that hides its text raises ``Unreadable``
(the guard refuses the request rather than pass what it could not read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:  # declared for type checkers only
    from python_multipart.multipart import MultipartCallbacks

# A text field of an OpenAI form is a name, an id or a prompt: far below this.
FIELD_LIMIT = 1 << 20
PLAIN_TRANSFER = (b"", b"7bit", b"8bit", b"binary")


class Unreadable(Exception):
    """The body could not be read as its content type says (the message says why)."""


class TextFields:
    """Fed a ``multipart/form-data`` body chunk by chunk; ``finish()`` gives (name, value)
    of every part without a filename."""

    def __init__(self, content_type: bytes) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise Unreadable("a multipart body without a boundary")
        self.fields: list[tuple[str, str]] = []
        self._part: dict = {}
        self._header = [b"", b""]
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._begin, "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_part_data": self._data, "on_part_end": self._end,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except Unreadable:
            raise
        except Exception:  # noqa: BLE001 - any malformation
            raise Unreadable("a multipart body that does not parse") from None

    def finish(self) -> list[tuple[str, str]]:
        try:
            self._parser.finalize()
        except Exception:  # noqa: BLE001
            raise Unreadable("a multipart body that does not parse") from None
        if self._part.get("open"):
            raise Unreadable("a multipart body that ends inside a part")
        return self.fields

    def _begin(self) -> None:
        self._part = {"name": None, "file": True, "data": [], "size": 0, "open": True}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        name, value = self._header[0].lower(), self._header[1]
        if name == b"content-disposition":
            _, parameters = parse_options_header(value)
            self._part.update(name=parameters.get(b"name"), file=b"filename" in parameters)
        elif name == b"content-transfer-encoding" and value.strip().lower() not in PLAIN_TRANSFER:
            raise Unreadable("a form part in a transfer encoding")
        self._header[:] = [b"", b""]

    def _data(self, chunk: bytes, start: int, end: int) -> None:
        part = self._part
        if part["file"]:
            return
        part["size"] += end - start
        if part["size"] > FIELD_LIMIT:
            raise Unreadable(f"a form text field longer than {FIELD_LIMIT} bytes")
        part["data"].append(chunk[start:end])

    def _end(self) -> None:
        part = self._part
        part["open"] = False
        if part["name"] is not None and not part["file"]:
            try:
                value = b"".join(part["data"]).decode("utf-8")
            except UnicodeDecodeError:
                raise Unreadable("a form text field that is not UTF-8") from None
            self.fields.append((part["name"].decode("utf-8", "replace"), value))
