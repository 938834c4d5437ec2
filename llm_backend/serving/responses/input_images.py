"""A Responses request's ``input_image`` by ``file_id`` (issue #60): the caller's own uploaded
file, read and made a data URL of its media type for the chat request, as OpenAI reads one.

Stored items keep the ``file_id`` (never the bytes): each chat request made from them reads it
again, here, for the items of the turn and of its history alike. A file of another tenant, or
none, is the Files API's 404 (``No such File object``), naming the part. Bounded before any
byte is read, by the file objects' sizes: the request's file images against
``image_max_count``, each against ``image_max_bytes``, together against
``image_max_request_bytes`` (a list of 100 ids of 20 MB files would otherwise be 2 GB read
before the backend's checks of the images, backends/llama/images.py, count them); then read
and encoded off the event loop. The data URL then passes those checks as a client's would.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from ... import errors
from ...json.types import Json
from ...off_loop import off_loop
from ..files import file_store
from ..services import Services


def _file_images(items: list[Json], where: str) -> list[tuple[str, str, int, int]]:
    """(param, file_id, item index, part index) of each image given by ``file_id`` alone."""
    found = []
    for index, item in enumerate(items):
        if item.get("type", "message") != "message":
            continue
        for position, part in enumerate(item.get("content") or []):
            if isinstance(part, dict) and part.get("type") == "input_image" and not part.get("image_url") and part.get("file_id"):
                found.append((f"{where}[{index}].content[{position}].file_id", part["file_id"], index, position))
    return found


def unseen_history(earlier: list[Json], images: bool, history: str) -> None:
    """A history (a conversation, a previous response) holding images, read for a model that
    cannot see them: the 400 naming where they came from, before the chat request is made
    (the chat's own would name a ``messages`` the client never sent)."""
    if images:
        return
    for item in earlier:
        if item.get("type", "message") == "message" and any(
            isinstance(part, dict) and part.get("type") == "input_image" for part in item.get("content") or []
        ):
            raise errors.bad_request(
                f"Invalid '{history}': it holds an image ('input_image', item {item.get('id')}), and this model reads "
                "text only (a vision model has a projector: docs/MODELS.md).",
                history, "invalid_value",
            )


def media_type(file: Json) -> str:
    """The file's image media type: as uploaded, else by its name's extension; else
    ``application/octet-stream``, which the image checks refuse, naming the part."""
    for candidate in (file.get("mime_type"), mimetypes.guess_type(file.get("filename") or "")[0]):
        if candidate and candidate.startswith("image/"):
            return candidate
    return "application/octet-stream"


def _data_url(path: Path, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@dataclass(frozen=True)
class OwnFiles:
    """The files of ``owner`` as images of a chat request."""

    services: Services
    owner: str

    async def readable(self, items: list[Json], where: str, earlier: int = 0) -> list[Json]:
        """``items`` with each ``input_image`` given by ``file_id`` alone given its data URL
        (copies: the items stay as stored); ``where`` names their list in errors, ``earlier``:
        file images of the same request already read (counted against the bound)."""
        wanted = _file_images(items, where)
        if not wanted:
            return items
        settings = self.services.settings
        if len(wanted) + earlier > settings.image_max_count:
            raise errors.too_many_images(wanted[max(0, settings.image_max_count - earlier)][0], settings.image_max_count)
        located: dict[str, tuple[Json, Path]] = {}
        total = 0
        for param, file_id, _, _ in wanted:
            if file_id in located:
                continue
            found = await self.services.database.run(file_store(self.services).locate, self.owner, file_id)
            if found is None:
                raise errors.no_such("File", file_id, param)
            if found[0]["bytes"] > settings.image_max_bytes:
                raise errors.image_bytes_too_large(param, settings.image_max_bytes)
            total += found[0]["bytes"]
            if total > settings.image_max_request_bytes:
                raise errors.images_too_large(param, settings.image_max_request_bytes)
            located[file_id] = found
        urls = {file_id: await off_loop(True, _data_url, path, media_type(file)) for file_id, (file, path) in located.items()}
        read = [dict(item) for item in items]
        for _, file_id, index, position in wanted:
            content = read[index]["content"] = list(read[index]["content"])
            content[position] = {**content[position], "image_url": urls[file_id]}
        return read

    async def both(self, earlier: list[Json], turn: list[Json], history: str) -> tuple[list[Json], list[Json]]:
        """The history's items (named ``history`` in errors) and the turn's (``input``), read."""
        read_earlier = await self.readable(earlier, history)
        return read_earlier, await self.readable(turn, "input", len(_file_images(earlier, history)))
