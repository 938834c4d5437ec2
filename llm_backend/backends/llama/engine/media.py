"""Images in a prompt (issue #60): a vision model's projector (its ``mmproj`` GGUF) through
llama.cpp's multimodal library, ``mtmd``.

An image reaches the engine checked and bounded by the API process (backends/llama/images.py:
its bytes, then its header's pixels, before anything decodes it) as its file's bytes, their
digest and size. Here it is decoded by Pillow (never by stb on a client's bytes: stb sniffs
formats and allocates what a header claims), and ``mtmd_tokenize`` frames it as the model
does (both on the worker's thread that reads requests, ``frame_ahead``, never the step's): the text its template writes around each tile (SmolVLM: ``<fake_token_around_image>
<row_1_col_1>``...) and one chunk of positions a tile. Usage counts those positions, as
many as the projector makes (a 1x1 image is 17 tiles of 64 for SmolVLM: it scales every
image to its longest edge).

Where an image stands. Each image part of a message becomes a marker of the request's own
(random: a client's text cannot hold it), the template renders the messages as text, and the
rendered prompt is cut at the markers: the text between is tokenized as every prompt is
(a client's control-token texts stay text: special_texts.py), each image's chunks are put in
its marker's place. An image chunk's positions get placeholder ids: negative, from the
tenant, the image's digest and the position in it, so the prefix cache (prefixes.py) finds a
tenant's image again where it stood before (a later turn, a retry: its KV reused, nothing
encoded) and never another tenant's: the same image from two tenants shares nothing.

Computed once, off the step. A span's embeddings (one row of ``n_embd`` floats a position)
are computed when its prefill reaches it and the cache does not hold it, on a thread of
their own (``mtmd_encode_chunk`` lets go of the GIL: other streams step meanwhile; SmolVLM's
tower is about 3.5 s a tile on one of these cores), and kept in a least-recently-used cache
per tenant, bounded in bytes (``image_cache_mb``): a client that sends the history again
with its image does not pay the encode twice. The scheduler cuts prompt chunks at a span's
edges (a llama_batch holds tokens or embeddings, not both) and feeds a span's rows as
embeddings (executor.py).

A projector whose image attends to itself both ways (Gemma 3: ``mtmd_decode_use_non_causal``)
has its span decoded in one piece with causal attention off for that decode (llama.cpp's
server does the same), never cut by the scheduler's chunks; it must fit one decode
(``n_batch``). Projectors that place an image by M-RoPE positions (Qwen2-VL, Qwen2.5-VL,
Qwen3-VL: several positions a token, fewer than its tokens) are refused at load for now.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import io
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import llama_cpp

from .errors import RequestError

# What the engine decodes of an image at most, whatever the API process allowed: its longest
# side is scaled down to this first (every projector seen scales an image to 2048 or less).
LONGEST_SIDE = 4096
FORMATS = ["PNG", "JPEG", "WEBP", "GIF"]  # Pillow's parsers a client's image may meet (OpenAI's four)
LOW_DETAIL_SIDE = 512  # ``detail: low``: the image the model sees (OpenAI's)
MAX_PIXELS = 40_000_000  # the API process's own bound is lower (settings): a second look, never a decode past it
IMAGE_CACHE_MB = 64  # embeddings kept per worker (SmolVLM: 147 KB a tile, ~440 tiles)
# An image's encode failed (the projector's fault, not the client's): that request ends with it.
IMAGE_FAILED = {"status": 500, "message": "The model's projector failed on an image of this request."}
PLACEHOLDER_RANGE = 2**31 - 2
FRAMED = "\0framed"  # an image part's framing, made ahead (``frame_ahead``): no client key can be it  # placeholder ids fill int32's negatives (prefix files hold int32 tokens)


class Chunk:
    """An image chunk's copy, freed with the last reference to it (a request cancelled before
    it was submitted, a span gone)."""

    def __init__(self, mtmd: Any, pointer: Any) -> None:
        self.pointer = pointer
        weakref.finalize(self, mtmd.mtmd_input_chunk_free, pointer)


@dataclass(eq=False)
class Span:
    """One image chunk's positions in a prompt."""

    start: int  # its first position
    n: int  # its positions
    key: tuple[str, str, int]  # (tenant, image digest, chunk): what its embeddings are cached by
    chunk: Chunk  # the mtmd chunk
    whole: bool = False  # its rows decoded in one piece, attending to each other both ways (Gemma 3)
    embeddings: Future | None = None  # its rows (a ctypes float array), once asked for
    ids: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + self.n


def placeholder(tenant: str, digest: str, chunk: int, position: int) -> int:
    """A span position's id in the prompt (never a vocabulary id): the same tenant's same image
    at the same place is the same prefix, another tenant's is not."""
    h = hashlib.blake2b(f"{tenant}\0{digest}\0{chunk}\0{position}".encode(), digest_size=8).digest()
    return -(1 + int.from_bytes(h, "little") % PLACEHOLDER_RANGE)


def images_in(messages: Any) -> Iterator[dict[str, Any]]:
    """The image parts (the worker's form: backends/llama/images.py) of chat ``messages``."""
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "image":
                yield part


def image_parts(messages: list[dict[str, Any]]) -> int:
    """How many image parts the messages hold."""
    return sum(1 for _ in images_in(messages))


class Media:
    """One engine's projector: images framed into chunks, encoded once, their rows kept."""

    def __init__(self, model: Any, path: str, config: dict[str, Any], batch: int) -> None:
        import llama_cpp.mtmd_cpp as mtmd

        self.mtmd = mtmd
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = bool(config.get("n_gpu_layers"))  # the projector where the model's layers are
        params.n_threads = int(config.get("n_threads_batch") or config.get("n_threads") or 1)
        params.print_timings, params.warmup = False, False
        if config.get("image_max_tokens"):
            params.image_max_tokens = int(config["image_max_tokens"])
        self.ctx = mtmd.mtmd_init_from_file(path.encode(), model.model, params)
        if not self.ctx:
            raise RuntimeError(f"mtmd could not load the projector {path}")
        if not mtmd.mtmd_support_vision(self.ctx):
            raise RuntimeError(f"the projector {path} has no vision encoder")
        if mtmd.mtmd_decode_use_mrope(self.ctx):
            raise RuntimeError(f"the projector {path} places images by M-RoPE positions: not served yet (engine/media.py)")
        self.batch = batch  # the most rows one decode takes: a whole image's must fit it
        self.n_embd = llama_cpp.llama_model_n_embd_inp(model.model)
        self.marker = mtmd.mtmd_default_marker().decode()
        self.encoder = ThreadPoolExecutor(1, thread_name_prefix="media")  # one mtmd context: one encode at a time
        self.kept: OrderedDict[tuple[str, str, int], Any] = OrderedDict()  # embeddings by span key, least recent first
        self.kept_bytes = 0
        self.lock = threading.Lock()  # ``kept``: read on the engine's thread, filled on the media thread
        self.cache_bytes = int(config.get("image_cache_mb", IMAGE_CACHE_MB)) << 20
        self.encoded = 0  # spans encoded since the start (stats)

    # --- a request's prompt ---

    def placed(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        """The messages with each image part a marker of this request's own, in their text;
        the images in their order; the marker."""
        marker = f"<__image_{secrets.token_hex(12)}__>"
        images: list[dict[str, Any]] = []
        placed = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list) and any(isinstance(part, dict) and part.get("type") == "image" for part in content):
                texts = []
                for part in content:
                    if part.get("type") == "image":
                        images.append(part)
                        texts.append(marker)
                    else:
                        texts.append(part.get("text") or part.get("refusal") or "")
                message = {**message, "content": "".join(texts)}
            placed.append(message)
        return placed, images, marker

    def framed(self, pieces: list[list[int]], images: list[dict[str, Any]], tenant: str) -> tuple[list[int], list[Span]]:
        """The prompt: each text piece's tokens with the images' chunks between (``pieces``
        has one more entry than ``images``), and the images' spans."""
        prompt, spans = list(pieces[0]), cast(list[Span], [])
        for image, piece in zip(images, pieces[1:]):
            index = 0  # the image's chunks, in order: the same image anywhere is the same rows
            for kind, value, chunk in self._framing(image):
                if kind == "text":
                    prompt += value
                    continue
                whole = bool(self.mtmd.mtmd_decode_use_non_causal(self.ctx, chunk.pointer))
                if whole and value > self.batch:
                    raise RequestError(400, f"An image of {value} positions must be decoded in one piece, and this model's "
                                       f"n_batch is {self.batch}.", "messages", "invalid_value")
                span = Span(len(prompt), value, (tenant, image["sha256"], index), chunk, whole)
                prompt += [placeholder(tenant, image["sha256"], index, offset) for offset in range(value)]
                spans.append(span)
                index += 1
            prompt += piece
        return prompt, spans

    def frame_ahead(self, messages: Any) -> None:
        """Each image part of ``messages`` framed now, by the thread that reads requests: the
        decode and the projector's preprocessing take 180-520 ms an image for SmolVLM's 17
        tiles on these cores, which on the engine's thread would hold every stream. Kept in
        the part for ``framed`` (a refusal too, raised there). mtmd's preprocessing reads
        its context only (``preprocess`` is const), so it runs beside an encode."""
        for part in images_in(messages):
            if FRAMED not in part:
                try:
                    part[FRAMED] = self._chunks(part)
                except RequestError as refusal:
                    part[FRAMED] = refusal

    def _framing(self, image: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """The image's framing: made ahead (``frame_ahead``), else now."""
        framed = image.pop(FRAMED, None)
        if isinstance(framed, RequestError):
            raise framed
        return framed if framed is not None else self._chunks(image)

    def _chunks(self, image: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """An image framed by the model's projector: ("text", tokens, None) and ("image",
        positions, its chunk's copy) in order; nothing is encoded."""
        mtmd = self.mtmd
        bitmap = self._bitmap(image)
        chunks = mtmd.mtmd_input_chunks_init()
        try:
            text = mtmd.mtmd_input_text()
            raw = self.marker.encode()
            text.text, text.text_len, text.add_special, text.parse_special = raw, len(raw), False, True
            code = mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap), 1)
            if code != 0:
                raise RequestError(400, f"This model's projector could not frame the image (mtmd {code}).", "messages", "invalid_image")
            framed: list[tuple[str, Any, Any]] = []
            for i in range(mtmd.mtmd_input_chunks_size(chunks)):
                chunk = mtmd.mtmd_input_chunks_get(chunks, i)
                if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    n = ctypes.c_size_t()
                    tokens = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                    framed.append(("text", [tokens[j] for j in range(n.value)], None))
                else:
                    framed.append(("image", mtmd.mtmd_input_chunk_get_n_tokens(chunk), Chunk(mtmd, mtmd.mtmd_input_chunk_copy(chunk))))
            return framed
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            mtmd.mtmd_bitmap_free(bitmap)

    def _bitmap(self, image: dict[str, Any]) -> Any:
        """The image decoded to RGB by Pillow, as an mtmd bitmap (the caller frees it)."""
        from PIL import Image

        data = base64.b64decode(image["data"], validate=True)
        if hashlib.sha256(data).hexdigest() != image.get("sha256"):
            raise RequestError(400, "An image's digest does not match its bytes.", "messages", "invalid_image")
        with Image.open(io.BytesIO(data), formats=FORMATS) as opened:  # the API process read it as one of these
            width, height = opened.size
            if width * height > MAX_PIXELS:  # the API process bounds it lower: never decoded past this
                raise RequestError(400, f"An image of {width}x{height} pixels is too large.", "messages", "invalid_image")
            opened.draft("RGB", (LONGEST_SIDE, LONGEST_SIDE))  # JPEG: decoded at a fraction of its size
            rgb = opened.convert("RGB")
        # ``detail: low`` is OpenAI's "low-res 512px x 512px version of the image": the model
        # sees that. Its count is what the projector makes of it (SmolVLM scales every image
        # to its longest edge: no fewer tiles; ``image_max_tokens`` sets those).
        side = LOW_DETAIL_SIDE if image.get("detail") == "low" else LONGEST_SIDE
        rgb.thumbnail((side, side))
        pixels = rgb.tobytes()
        bitmap = self.mtmd.mtmd_bitmap_init(rgb.width, rgb.height, (ctypes.c_ubyte * len(pixels)).from_buffer_copy(pixels))
        self.mtmd.mtmd_bitmap_set_id(bitmap, image["sha256"].encode())
        return bitmap

    # --- embeddings ---

    def ready(self, span: Span) -> bool:
        """Whether ``span``'s rows are computed; if not asked yet, asked now (the cache's, or
        an encode on the media thread)."""
        if span.embeddings is None:
            span.embeddings = Future()
            with self.lock:
                kept = self.kept.get(span.key)
                if kept is not None:
                    self.kept.move_to_end(span.key)
            if kept is not None:
                span.embeddings.set_result(kept)
            else:
                self.encoder.submit(self._encode, span)
        # A failed encode is never ready: the engine ends its request before the next step
        # (batching.py), never decodes it (which would fail every request of the step).
        return span.embeddings.done() and span.embeddings.exception() is None

    def rows(self, span: Span) -> Any:
        """A ready span's embeddings (raises what its encode raised)."""
        assert span.embeddings is not None  # fed only once ready
        return span.embeddings.result()

    def _encode(self, span: Span) -> None:
        future = span.embeddings
        assert future is not None
        try:
            if self.mtmd.mtmd_encode_chunk(self.ctx, span.chunk.pointer) != 0:
                raise RuntimeError("mtmd_encode_chunk failed")
            size = span.n * self.n_embd
            rows = (ctypes.c_float * size)()
            ctypes.memmove(rows, self.mtmd.mtmd_get_output_embd(self.ctx), size * ctypes.sizeof(ctypes.c_float))
        except BaseException as exc:  # the request fails, the engine goes on
            future.set_exception(exc)
            return
        self.encoded += 1
        future.set_result(rows)
        self._keep(span.key, rows)

    def _keep(self, key: tuple[str, str, int], rows: Any) -> None:
        size = ctypes.sizeof(rows)
        if size > self.cache_bytes:
            return
        with self.lock:
            if key in self.kept:
                self.kept_bytes -= ctypes.sizeof(self.kept.pop(key))
            self.kept[key] = rows
            self.kept_bytes += size
            while self.kept_bytes > self.cache_bytes:
                _, old = self.kept.popitem(last=False)
                self.kept_bytes -= ctypes.sizeof(old)

    def close(self) -> None:
        self.encoder.shutdown(wait=True, cancel_futures=True)
        self.mtmd.mtmd_free(self.ctx)
