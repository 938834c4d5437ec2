"""Text extraction: the formats file_search indexes, and typed refusals for the rest."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from llm_backend.retrieval.extraction import ExtractionError, extract_text


def pdf_with_text(*pages: str) -> bytes:
    """A real PDF written by pypdf: one Helvetica text line per page."""
    writer = PdfWriter()
    for line in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
             NameObject("/BaseFont"): NameObject("/Helvetica")}
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
        )
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_plain_text_is_decoded_as_utf8():
    assert extract_text("Grüße aus Köln".encode(), "notes.txt") == "Grüße aus Köln"


def test_a_utf8_byte_order_mark_is_dropped():
    assert extract_text(b"\xef\xbb\xbfhello", "a.md") == "hello"


def test_text_in_another_encoding_is_detected():
    text = "Le garçon a mangé une crème brûlée à la fenêtre de l'hôtel."
    assert extract_text(text.encode("cp1252"), "menu.txt") == text


def test_markdown_json_and_code_are_indexed_as_written():
    source = "def area(r):\n    return 3.14159 * r * r\n"
    assert extract_text(source.encode(), "geometry.py") == source
    document = json.dumps({"title": "Report", "pages": 3})
    assert extract_text(document.encode(), "report.json") == document
    assert extract_text(b"# Title\n\n* item", "README.md") == "# Title\n\n* item"


def test_html_gives_its_visible_text_without_scripts_or_styles():
    html = b"""<html><head><title>T</title><style>p{color:red}</style></head>
    <body><h1>Harbour   rules</h1><script>var secret = 1;</script><p>Ships dock at <b>dawn</b>.</p></body></html>"""
    text = extract_text(html, "page.html")
    assert "Harbour rules" in text and "Ships dock at\\ndawn" not in text
    assert "dawn" in text and "secret" not in text and "color" not in text


def test_pdf_text_is_extracted_page_by_page():
    text = extract_text(pdf_with_text("The lighthouse keeper", "counts the ships"), "log.pdf")
    assert text.index("The lighthouse keeper") < text.index("counts the ships")


def test_the_mime_type_decides_when_the_name_has_no_extension():
    assert extract_text(b"<p>Hello</p>", "upload", "text/html; charset=utf-8") == "Hello"
    assert extract_text(b"hi there", "upload", "text/plain") == "hi there"


@pytest.mark.parametrize(
    "data, filename, message",
    [
        (b"PK\x03\x04 docx bytes", "report.docx", "not supported"),
        (b"\x89PNG\r\n\x1a\n", "picture.png", "not supported"),
        (b"\x00\x01\x02binary", "data.txt", "binary"),
        (b"   \n\t ", "empty.txt", "no text"),
        (b"%PDF-1.4 this is not really a pdf", "broken.pdf", "PDF"),
    ],
)
def test_unsupported_undecodable_or_empty_files_raise_a_typed_error_with_a_reason(data, filename, message):
    with pytest.raises(ExtractionError, match=message):
        extract_text(data, filename)
