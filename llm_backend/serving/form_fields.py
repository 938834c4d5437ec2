"""The text fields of a multipart body, its files skipped (python-multipart's push parser):
what a forwarded upload names (``file_id`` of a container file, ``consent`` of a voice) is
read without copying the uploaded bytes."""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header


def text_fields(content: bytes, content_type: bytes) -> list[tuple[str, str]]:
    """(name, value) of every part without a filename; none when the body is not multipart
    or not readable as such (the upstream answers for a malformed body)."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        return []
    fields: list[tuple[str, str]] = []
    part: dict = {}
    header: list[bytes] = [b"", b""]

    def begin() -> None:
        part.update(name=None, file=True, data=[])

    def header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        if header[0].lower() == b"content-disposition":
            _, parameters = parse_options_header(header[1])
            part.update(name=parameters.get(b"name"), file=b"filename" in parameters)
        header[:] = [b"", b""]

    def data(chunk: bytes, start: int, end: int) -> None:
        if not part["file"]:
            part["data"].append(chunk[start:end])

    def end() -> None:
        if part["name"] is not None and not part["file"]:
            fields.append((part["name"].decode("utf-8", "replace"), b"".join(part["data"]).decode("utf-8", "replace")))

    callbacks = {
        "on_part_begin": begin, "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_part_data": data, "on_part_end": end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(content)
        parser.finalize()
    except Exception:  # noqa: BLE001 - any malformation: nothing read (the upstream refuses it)
        return fields
    return fields
