"""A file's bytes to the text that is chunked and searched.

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

import io
import re
from pathlib import PurePath

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


def decode_text(data: bytes) -> str:
    """Bytes of a text file as ``str``."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ExtractionError(f"The file is not valid UTF-16 text: {exc.reason}.") from None
    if b"\x00" in data:
        raise ExtractionError("The file looks binary (it contains NUL bytes), not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Not UTF-8: Windows-1252, the common legacy encoding of Western text (a superset of
    # Latin-1's printable range); Latin-1 for the five bytes cp1252 leaves undefined.
    # charset-normalizer was tried and guessed cp1250/cp1257 for French text here.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def html_text(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for element in soup(["script", "style", "noscript", "template", "head"]):
        element.decompose()
    text = soup.get_text("\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is encrypted.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"The PDF could not be read: {exc}") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


def extract_text(data: bytes, filename: str, mime_type: str | None = None) -> str:
    """The searchable text of a file; raises ``ExtractionError`` when there is none."""
    kind = kind_of(filename, mime_type)
    if kind == "pdf":
        text = pdf_text(data)
    elif kind == "html":
        text = html_text(data)
    else:
        text = decode_text(data)
    if not text.strip():
        raise ExtractionError("The file contains no text to index.")
    return text
