"""Files cut into overlapping chunks, OpenAI's way, counted in the embedding model's tokens.

``auto`` is 800-token chunks overlapping by 400; ``static`` sets ``max_chunk_size_tokens``
(100-4096) and ``chunk_overlap_tokens`` (0 to half the maximum). A chunk is an exact slice
of the extracted text (the tokenizer's character offsets), so what search returns is what
the file said, case and spacing included.

A chunk may be longer than the embedding model's context (800 > 256): the embedder embeds
it window by window and averages (see ``backends/embedding/embedder.py``); the chunk itself
stays as the user asked for.

The text comes as a stream of pieces (``extraction.text_pieces``) and is tokenized a piece at
a time: the chunk that reaches a piece's end waits, its text carried into the next piece, so
memory is a piece's, not the file's, and the chunks are the ones the whole text would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import bad_request

AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS = 800, 400
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 100, 4096
PARAM = "chunking_strategy"
# Text tokenized at once: the tokenizer's output for a piece costs ~140 bytes a character in
# Python (ids, offsets, word starts; 1 MB of text took the process 140 MB, never given back).
PIECE_CHARS = 64 << 10
# Text carried over to the next piece past this much means no word ends in it: it is cut.
MAX_CARRY_CHARS = 4 << 20


def _slices(pieces: Iterable[str]) -> Iterator[str]:
    """``pieces`` cut to at most ``PIECE_CHARS`` (a cut may fall inside a word: the chunk
    that reaches it waits for the next piece anyway)."""
    for piece in pieces:
        for start in range(0, len(piece), PIECE_CHARS):
            yield piece[start : start + PIECE_CHARS]


class TooManyTokens(Exception):
    """The text passed the token budget (``max_tokens``) before it ended."""


@dataclass(frozen=True)
class ChunkingStrategy:
    max_chunk_size_tokens: int = AUTO_MAX_TOKENS
    chunk_overlap_tokens: int = AUTO_OVERLAP_TOKENS

    def as_openai(self) -> dict[str, Any]:
        """As a vector store file shows it (``auto`` is shown resolved, like OpenAI does)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_chunk_size_tokens,
                "chunk_overlap_tokens": self.chunk_overlap_tokens,
            },
        }


AUTO = ChunkingStrategy()


@dataclass(frozen=True)
class Chunk:
    text: str
    n_tokens: int
    start: int  # character offsets of the chunk in the extracted text
    end: int


def _integer(value: Any, param: str) -> int:
    # JSON Schema's integer includes 100.0: a number with no fractional part.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"Invalid '{param}': expected an integer.", param, "invalid_type")
    return value


def parse_strategy(strategy: dict[str, Any] | None) -> ChunkingStrategy:
    """A request's ``chunking_strategy`` (absent means ``auto``); 400 when out of bounds."""
    if strategy is None:
        return AUTO
    if not isinstance(strategy, dict):
        raise bad_request(f"Invalid '{PARAM}': expected an object.", PARAM, "invalid_type")
    kind = strategy.get("type")
    if kind == "auto":
        return AUTO
    if kind != "static":
        raise bad_request(
            f"Invalid '{PARAM}.type': expected one of 'auto' or 'static', got {kind!r}.", f"{PARAM}.type", "invalid_value"
        )
    static = strategy.get("static")
    if not isinstance(static, dict):
        raise bad_request(f"Missing required parameter: '{PARAM}.static'.", f"{PARAM}.static", "missing_required_parameter")
    size_param, overlap_param = f"{PARAM}.static.max_chunk_size_tokens", f"{PARAM}.static.chunk_overlap_tokens"
    if "max_chunk_size_tokens" not in static or "chunk_overlap_tokens" not in static:
        missing = size_param if "max_chunk_size_tokens" not in static else overlap_param
        raise bad_request(f"Missing required parameter: '{missing}'.", missing, "missing_required_parameter")
    size = _integer(static["max_chunk_size_tokens"], size_param)
    overlap = _integer(static["chunk_overlap_tokens"], overlap_param)
    if not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
        raise bad_request(
            f"Invalid '{size_param}': must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, got {size}.",
            size_param,
            "invalid_value",
        )
    if overlap < 0 or overlap > size // 2:
        raise bad_request(
            f"Invalid '{overlap_param}': must be between 0 and half of max_chunk_size_tokens ({size // 2}), got {overlap}.",
            overlap_param,
            "invalid_value",
        )
    return ChunkingStrategy(size, overlap)


def chunk_text(
    text: str, tokenize: Callable[[str], Any], strategy: ChunkingStrategy = AUTO
) -> list[Chunk]:
    """``text`` (whole) in chunks: ``chunk_stream`` of one piece."""
    return list(chunk_stream([text], tokenize, strategy))


def chunk_stream(
    pieces: Iterable[str], tokenize: Callable[[str], Any], strategy: ChunkingStrategy = AUTO, max_tokens: int | None = None
) -> Iterator[Chunk]:
    """The text of ``pieces`` in chunks of at most ``max_chunk_size_tokens`` tokens, each
    starting about ``max - overlap`` tokens after the previous one; the last one ends at the
    text's end. ``TooManyTokens`` once the text holds more than ``max_tokens``.

    Boundaries fall between words (a chunk ends before a word it cannot hold whole, the next
    starts at a word), so a chunk re-tokenizes to exactly its tokens and never exceeds the
    maximum; only a single word longer than a chunk is cut inside. ``tokenize`` returns
    ``ids``, character ``offsets`` and ``word_starts`` (``Embedder.tokenize``)."""
    size, overlap = strategy.max_chunk_size_tokens, strategy.chunk_overlap_tokens
    source = _slices(pieces)
    pending = next(source, None)
    carry, base, counted = "", 0, 0  # text waiting, where it starts in the whole text, tokens so far
    while pending is not None:
        following_piece = next(source, None)
        final = following_piece is None
        text = carry + pending
        tokens = tokenize(text)
        offsets, starts = tokens.offsets, tokens.word_starts
        total = len(offsets)
        # The text's last word may go on in the next piece ("thi" of "things"), so its tokens,
        # and whether a chunk may end before it, are known only then: tokens before it are
        # settled. A chunk that reaches past them waits, whole text or not (a chunk cut back
        # to "thi"'s start held 99 tokens where the whole text's took "things" for its 100th).
        settled = total
        if not final:
            settled = total - 1
            while settled > 0 and not starts[settled]:
                settled -= 1
        resume, consumed = len(text), total  # where the next piece's text starts (chars, tokens)
        first = 0
        while first < total:
            last = min(first + size, total)
            if last > settled and (first > 0 or len(text) < MAX_CARRY_CHARS):
                resume, consumed = offsets[first][0], first  # the tail waits for the next piece
                break
            if last < total:
                cut = last
                while cut > first + 1 and not starts[cut]:
                    cut -= 1
                if starts[cut]:
                    last = cut
            if max_tokens is not None and counted + last > max_tokens:
                raise TooManyTokens(counted + last)  # before the chunk past the budget is embedded
            start, end = offsets[first][0], offsets[last - 1][1]
            if last == total and not final:
                end = len(text)  # a tail with no word end in 4 MB: cut at the piece's end
            yield Chunk(text[start:end], last - first, base + start, base + end)
            if last == total:
                break
            following = max(last - overlap, first + 1)
            while following < last and not starts[following]:
                following += 1
            first = following
        counted += consumed
        carry, base, pending = text[resume:], base + resume, following_piece
