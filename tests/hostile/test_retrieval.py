"""Retrieval bounded at any file size (issue #33, seen live: a 30 MB text file added to a
vector store took the API process to 4.9 GB, read and tokenized whole, and the content
endpoint read it whole too). Files stream through extraction, chunking and embedding, stop
at OpenAI's file_search limits with OpenAI's ``last_error``, and the content endpoint pages."""

from __future__ import annotations

import time
import zlib

import pytest

from tests.support.clients import sdk
from tests.support.rss import watch
from tests.support.server import LiveServer

MiB = 1 << 20
WORDS = "The lighthouse keeper counts the ships that pass the rocky northern cape at dawn. "


# Tokens a file may have on the budgeted server: the 30 MB file holds about 6 million, 6,000
# times as many (it was 5,000, and 20,000 before: the same bound, five and twenty times the
# embedding, ~1 ms of CPU a token in 800-token chunks overlapping by 400).
MAX_FILE_TOKENS = 1000


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """A server indexing at most 1,000 tokens a file: the limit is reached in a second or two."""
    # Indexing at the service's own priority: at niceness 10 (the default) this shared machine
    # starves the thread and the case waits on the machine, not on the bound.
    # It indexes and pages files, and generates nothing: no chat model is loaded (~1 CPU-s).
    env = {
        "LLM_BACKEND_FILE_SEARCH_MAX_FILE_TOKENS": str(MAX_FILE_TOKENS),
        "LLM_BACKEND_INDEXING_NICE": "0",
        "LLM_BACKEND_MODEL_LOAD": "lazy",
    }
    with LiveServer(tmp_path_factory.mktemp("retrieval-budget"), env=env) as live:
        yield live


def indexed(client, store_id: str, file_id: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        found = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        if found.status != "in_progress" or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def add(client, name: str, content: bytes):
    file = client.files.create(file=(name, content), purpose="assistants")
    store = client.vector_stores.create(name=name)
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
    return store.id, file.id


@pytest.fixture(scope="module")
def big_file(budgeted):
    """A 30 MB text file added to a store, indexed (or not) while every process is watched."""
    client = sdk(budgeted)
    content = (WORDS * (30 * MiB // len(WORDS) + 1)).encode()[: 30 * MiB]
    with watch(budgeted.process.pid) as growth:
        store_id, file_id = add(client, "big.txt", content)
        found = indexed(client, store_id, file_id)
    return store_id, file_id, found, growth


def test_a_30_mb_text_file_stops_at_the_token_limit_in_bounded_memory(big_file):
    _, _, found, growth = big_file
    growth.assert_within()
    assert found.status == "failed"
    assert found.last_error.code == "invalid_file" and f"{MAX_FILE_TOKENS} tokens" in found.last_error.message


def test_the_content_of_a_large_file_is_one_bounded_page(budgeted, big_file, measured):
    store_id, file_id, _, _ = big_file
    with measured(budgeted):
        page = sdk(budgeted).vector_stores.files.content(file_id, vector_store_id=store_id)
    assert page.has_more is True
    assert 0 < sum(len(part.text) for part in page.data) <= 1_000_000


def test_a_file_within_the_limits_is_indexed_and_searchable(server, measured):
    client = sdk(server)
    # About 1,500 tokens, three chunks (800 tokens, 400 overlapping): the answer's is ranked
    # first, not merely stored (it was 6,000 tokens, 5 CPU-s of embedding, and any place in
    # the default page of 10 of its 15 chunks).
    content = (WORDS * 100).encode() + b"The secret harbour is called Port Wren."
    with measured(server):
        store_id, file_id = add(client, "within.txt", content)
        found = indexed(client, store_id, file_id)
    assert found.status == "completed", found.last_error
    hits = client.vector_stores.search(store_id, query="What is the secret harbour called?", max_num_results=1)
    assert any("Port Wren" in part.text for hit in hits.data for part in hit.content)


def flate_bomb_pdf(inflated: int) -> bytes:
    """A one-page PDF whose content stream inflates to ``inflated`` bytes of spaces."""
    # A full flush empties deflate's window: a block compressed after one is the same bytes
    # each time, so one is compressed and repeated (compressing the whole gigabyte took
    # ~2.7 CPU-s of the test process). The zlib trailer is the Adler-32 of all of it.
    block = b" " * MiB
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)  # with the zlib header
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # the final empty block, without this compressor's checksum
    checksum = 1
    for _ in range(inflated // MiB):
        checksum = zlib.adler32(block, checksum)
    stream = first + again * (inflated // MiB - 1) + end + checksum.to_bytes(4, "big")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_a_pdf_whose_stream_inflates_to_a_gigabyte_fails_in_bounded_memory(server, measured):
    client = sdk(server)
    content = flate_bomb_pdf(1024 * MiB)
    assert len(content) < 2 * MiB
    with measured(server):
        store_id, file_id = add(client, "bomb.pdf", content)
        found = indexed(client, store_id, file_id)
    assert found.status == "failed" and found.last_error.code == "invalid_file", found


def test_an_office_zip_bomb_is_never_opened(server, measured):
    """Office files (zip archives) are not indexed: refused by type, their bytes unread."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bomb:
        # Written a mebibyte at a time: the same archive without the 512 MiB string in this
        # process (2.5 CPU-s to build it whole, 1.4 s so).
        with bomb.open("word/document.xml", "w") as document:
            document.write(b"<w:t>")
            for _ in range(512):
                document.write(b" " * MiB)
            document.write(b"</w:t>")
    client = sdk(server)
    with measured(server):
        store_id, file_id = add(client, "bomb.docx", archive.getvalue())
        found = indexed(client, store_id, file_id)
    assert found.status == "failed" and found.last_error.code == "unsupported_file"
