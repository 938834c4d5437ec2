"""A file's bytes to the text that is chunked and searched, as a stream of pieces.

Bounded memory at any file size (issue #33: a 30 MB text file, read, decoded and tokenized
whole, took the API process to 4.9 GB): ``text_pieces`` reads a text file in 1 MB blocks
(a first pass picks the encoding, a second decodes), a PDF page by page (pypdf's own limits
bound each stream it inflates: 75 MB), and an HTML file, which is parsed whole, only up to
``MAX_HTML_BYTES``. Office files (zip archives, and so zip bombs) are not read at all.

Formats, chosen by the file name's extension, then the MIME type:
- text: plain text, Markdown, JSON, CSV, code (OpenAI's file_search list plus common
  neighbours), decoded as UTF-8 or UTF-16 (BOM honoured), else as Windows-1252;
  NUL bytes mean binary, not text.
- HTML: ``beautifulsoup4`` with the standard library's parser (no lxml to build), scripts
  and styles dropped, block boundaries kept as line breaks.
- PDF: ``pypdf`` (pure Python, maintained, 4 MB installed), the text layer of each page.

``markitdown`` would add Office formats but pulls ``magika`` (an onnxruntime model) and a
dozen packages for them; Office files are refused for now. Anything unsupported,
undecodable or without text raises ``ExtractionError``, whose message the caller records
as the file's ``last_error`` (status ``failed``), never a 500.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import BinaryIO

BLOCK_BYTES = 1 << 20
# An HTML document is parsed whole (BeautifulSoup: ~10x its size in memory).
MAX_HTML_BYTES = 8 << 20

TEXT_EXTENSIONS = frozenset(
    ".txt .text .md .markdown .rst .json .jsonl .csv .tsv .log .ini .cfg .toml .yaml .yml .xml"
    " .c .h .cc .cpp .hpp .cs .css .go .java .js .mjs .ts .tsx .jsx .kt .php .py .rb .rs .scala"
    " .sh .bash .sql .swift .tex .r .lua .pl .m".split()
)
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
PDF_EXTENSIONS = frozenset({".pdf"})
TEXT_MIME_TYPES = frozenset({"application/json", "application/xml", "application/x-sh", "application/javascript"})


class ExtractionError(ValueError):
    """The file cannot be turned into text; the message says why, for ``last_error``."""


def kind_of(filename: str, mime_type: str | None = None) -> str:
    """``text``, ``html`` or ``pdf``; raises ``ExtractionError`` for anything else."""
    suffix = PurePath(filename).suffix.lower()
    mime = (mime_type or "").split(";")[0].strip().lower()
    if suffix in HTML_EXTENSIONS or (not suffix and mime == "text/html"):
        return "html"
    if suffix in PDF_EXTENSIONS or (not suffix and mime == "application/pdf"):
        return "pdf"
    if suffix in TEXT_EXTENSIONS or (not suffix and (mime.startswith("text/") or mime in TEXT_MIME_TYPES)):
        return "text"
    shown = suffix or mime or "no extension"
    raise ExtractionError(f"Files of type {shown} are not supported for file search.")


def _encoding(source: BinaryIO) -> str:
    """The encoding a text file is read in (a pass over its blocks, nothing kept): UTF-16
    by its BOM, else UTF-8, else Windows-1252, else Latin-1; NUL bytes mean binary."""
    head = source.read(2)
    source.seek(0)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8-sig", "cp1252", "latin-1"]
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        source.seek(0)
        try:
            while block := source.read(BLOCK_BYTES):
                if encoding != "utf-16" and b"\x00" in block:
                    raise ExtractionError("The file looks binary (it contains NUL bytes), not text.")
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            if encoding == "utf-16":
                raise ExtractionError(f"The file is not valid UTF-16 text: {exc.reason}.") from None
            continue
        source.seek(0)
        return encoding
    return "latin-1"  # never reached: Latin-1 decodes any byte


def text_blocks(source: BinaryIO) -> Iterator[str]:
    """A text file's text, decoded block by block."""
    decoder = codecs.getincrementaldecoder(_encoding(source))()
    while block := source.read(BLOCK_BYTES):
        if text := decoder.decode(block):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def html_text(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for element in soup(["script", "style", "noscript", "template", "head"]):
        element.decompose()
    text = soup.get_text("\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def pdf_pages(source: BinaryIO) -> Iterator[str]:
    """The text of each page with text, one page at a time (pypdf reads the file lazily)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(source)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is encrypted.")
        first = True
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            if text:
                yield text if first else "\n\n" + text
                first = False
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise ExtractionError(f"The PDF could not be read: {type(exc).__name__}.") from None


def pdf_text(data: bytes) -> str:
    return "".join(pdf_pages(io.BytesIO(data)))


def text_pieces(source: Path | bytes, filename: str, mime_type: str | None = None) -> Iterator[str]:
    """The searchable text of a file (its path, or its bytes) in pieces of about a megabyte;
    raises ``ExtractionError`` when there is none or it cannot be read."""
    kind = kind_of(filename, mime_type)
    with (open(source, "rb") if isinstance(source, Path) else io.BytesIO(source)) as stream:
        if kind == "pdf":
            pieces = pdf_pages(stream)
        elif kind == "html":
            data = stream.read(MAX_HTML_BYTES + 1)
            if len(data) > MAX_HTML_BYTES:
                raise ExtractionError(f"HTML files over {MAX_HTML_BYTES >> 20} MB are not indexed: convert it to text.")
            pieces = iter([html_text(data)])
        else:
            pieces = text_blocks(stream)
        found = False
        for piece in pieces:
            found = found or bool(piece.strip())
            yield piece
    if not found:
        raise ExtractionError("The file contains no text to index.")


def extract_text(data: bytes, filename: str, mime_type: str | None = None) -> str:
    """The searchable text of a small file whole; raises ``ExtractionError`` when there is none."""
    return "".join(text_pieces(data, filename, mime_type))
