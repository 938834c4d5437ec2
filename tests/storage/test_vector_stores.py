"""Vector stores through the official SDK against a live server with the real embedding
model, on SQLite and on PostgreSQL: the lifecycle and the SDK's polling helpers, search
with filters, chunking bounds, content, delete cascades, per-key isolation, restart
durability and bad input (OpenAI's 4xx, nothing stored)."""

from __future__ import annotations

import openai
import pytest
from sqlalchemy import text

from llm_backend.storage import Database
from tests.storage.conftest import DATABASES
from tests.support import clients

KEY_A, KEY_B = "sk-vs-owner-a", "sk-vs-owner-b"
POLL = {"poll_interval_ms": 100}
DOCUMENTS = {
    "volcano": ("volcanoes.txt", "Magma rises through the crust and erupts from volcanoes as lava and ash.",
                {"topic": "geology", "year": 2019, "reviewed": True}),
    "bread": ("baking.md", "Knead the dough, let it rise overnight, then bake the bread at a high temperature.",
              {"topic": "cooking", "year": 2021, "reviewed": False}),
    "orbit": ("orbits.html", "<p>Planets travel around the sun on elliptical orbits described by Kepler.</p>",
              {"topic": "astronomy", "year": 2023, "reviewed": True}),
    "tides": ("tides.txt", "The moon's gravity pulls the oceans, producing high and low tides twice a day.",
              {"topic": "astronomy", "year": 2020, "reviewed": False}),
}


@pytest.fixture(scope="module", params=DATABASES)
def live(request, new_database_url, tmp_path_factory):
    """One server per database kind; chat models load lazily (never, here): only the
    embedding model works."""
    url = new_database_url(request.param)
    env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_MODEL_LOAD": "lazy"}
    server = clients.keyed_server(tmp_path_factory.mktemp(f"vector-stores-{request.param}"), [KEY_A, KEY_B], env=env)
    with server:
        server.database_url = url
        yield server


@pytest.fixture
def owner_a(live) -> openai.OpenAI:
    return clients.sdk(live, api_key=KEY_A, timeout=60)


@pytest.fixture
def owner_b(live) -> openai.OpenAI:
    return clients.sdk(live, api_key=KEY_B, timeout=60)


@pytest.fixture
def server_db(live):
    db = Database(live.database_url)
    yield db
    db.dispose()


def upload(client: openai.OpenAI, filename: str, content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    return client.files.create(file=(filename, data), purpose="assistants").id


@pytest.fixture(scope="module")
def science(live):
    """A store of owner A with the four documents indexed, each with its attributes; our
    names ⇒ file ids under ``ids``."""
    client = clients.sdk(live, api_key=KEY_A, timeout=60)
    store = client.vector_stores.create(name="science")
    ids = {}
    for name, (filename, content, attributes) in DOCUMENTS.items():
        ids[name] = upload(client, filename, content)
        done = client.vector_stores.files.create_and_poll(ids[name], vector_store_id=store.id, attributes=attributes, **POLL)
        assert done.status == "completed", done.last_error
    return store.id, ids


def found(page, ids) -> list[str]:
    names = {file_id: name for name, file_id in ids.items()}
    return [names.get(item.file_id, item.file_id) for item in page.data]


# --- lifecycle ------------------------------------------------------------------------------


def test_a_store_created_with_file_ids_indexes_them_and_keeps_its_counts_true(owner_a):
    file_ids = [upload(owner_a, "a.txt", "alpha beta gamma"), upload(owner_a, "b.md", "# delta\n\nepsilon")]
    store = owner_a.vector_stores.create(file_ids=file_ids, name="two", metadata={"team": "docs"})
    assert (store.object, store.name, store.metadata, store.file_counts.total) == ("vector_store", "two", {"team": "docs"}, 2)
    files = [owner_a.vector_stores.files.poll(file_id, vector_store_id=store.id, **POLL) for file_id in file_ids]
    assert [file.status for file in files] == ["completed", "completed"]
    done = owner_a.vector_stores.retrieve(store.id)
    assert done.status == "completed"
    assert (done.file_counts.completed, done.file_counts.in_progress, done.file_counts.total) == (2, 0, 2)
    assert done.usage_bytes == sum(file.usage_bytes for file in files) > 0


def test_upload_and_poll_ends_completed_with_the_default_chunking_shown(owner_a):
    store = owner_a.vector_stores.create(name="upload")
    file = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("notes.txt", b"some notes"), **POLL)
    assert (file.object, file.status, file.vector_store_id, file.last_error) == ("vector_store.file", "completed", store.id, None)
    assert file.chunking_strategy.static.max_chunk_size_tokens == 800
    assert file.chunking_strategy.static.chunk_overlap_tokens == 400


def test_create_and_poll_keeps_attributes_and_a_static_chunking(owner_a):
    store = owner_a.vector_stores.create()
    file_id = upload(owner_a, "s.txt", "static chunking text")
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}}
    file = owner_a.vector_stores.files.create_and_poll(
        file_id, vector_store_id=store.id, attributes={"lang": "en", "n": 3}, chunking_strategy=strategy, **POLL
    )
    assert file.status == "completed" and file.attributes == {"lang": "en", "n": 3}
    assert file.chunking_strategy.static.max_chunk_size_tokens == 100


def test_a_file_batch_upload_and_poll_indexes_every_file(owner_a):
    store = owner_a.vector_stores.create()
    batch = owner_a.vector_stores.file_batches.upload_and_poll(
        store.id, files=[("one.txt", b"first file"), ("two.txt", b"second file")], **POLL
    )
    assert (batch.object, batch.status, batch.file_counts.completed, batch.file_counts.total) == (
        "vector_store.files_batch", "completed", 2, 2
    )
    listed = owner_a.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert len(listed.data) == 2


def test_a_file_batch_with_per_file_attributes_gives_each_its_own(owner_a):
    store = owner_a.vector_stores.create()
    first, second = upload(owner_a, "x.txt", "x marks"), upload(owner_a, "y.txt", "y not")
    batch = owner_a.vector_stores.file_batches.create_and_poll(
        store.id, files=[{"file_id": first, "attributes": {"k": "x"}}, {"file_id": second}], attributes={"k": "shared"}, **POLL
    )
    assert batch.status == "completed"
    assert owner_a.vector_stores.files.retrieve(first, vector_store_id=store.id).attributes == {"k": "x"}
    assert owner_a.vector_stores.files.retrieve(second, vector_store_id=store.id).attributes == {"k": "shared"}


def test_an_unsupported_file_fails_with_last_error_not_a_500(owner_a):
    store = owner_a.vector_stores.create()
    file = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("slides.pptx", b"PK\x03\x04zip"), **POLL)
    assert file.status == "failed" and file.last_error.code == "unsupported_file"
    counts = owner_a.vector_stores.retrieve(store.id).file_counts
    assert (counts.failed, counts.completed) == (1, 0)


def test_files_list_filters_by_status_and_pages_both_ways(owner_a):
    store = owner_a.vector_stores.create()
    made = [owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=(f"p{i}.txt", b"page"), **POLL).id
            for i in range(3)]
    bad = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("p.bin", b"\x00\x01"), **POLL).id
    files = owner_a.vector_stores.files
    assert [f.id for f in files.list(store.id, filter="completed", order="asc")] == made
    assert [f.id for f in files.list(store.id, filter="failed").data] == [bad]
    page = files.list(store.id, order="asc", limit=2)
    assert [f.id for f in page.data] == made[:2] and page.has_more
    assert [f.id for f in files.list(store.id, order="asc", after=made[1], limit=1).data] == [made[2]]
    assert [f.id for f in files.list(store.id, order="asc", before=made[2], limit=1).data] == [made[1]]


def test_stores_list_newest_first_and_modify_sets_name_metadata_and_expiry(owner_b):
    first, second = owner_b.vector_stores.create(name="first"), owner_b.vector_stores.create(name="second")
    listed = [store.id for store in owner_b.vector_stores.list(limit=100)]
    assert listed.index(second.id) < listed.index(first.id)
    changed = owner_b.vector_stores.update(
        first.id, name="renamed", metadata={"k": "v"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert (changed.name, changed.metadata) == ("renamed", {"k": "v"})
    assert changed.expires_at == changed.last_active_at + 7 * 86400


def test_a_description_is_kept_and_shown(owner_b):
    # It was accepted and dropped.
    store = owner_b.vector_stores.create(name="described", description="Manuals of the kitchen appliances.")
    assert store.model_extra["description"] == "Manuals of the kitchen appliances."
    assert owner_b.vector_stores.retrieve(store.id).model_extra["description"] == "Manuals of the kitchen appliances."


def test_file_content_is_the_extracted_text(owner_a, science):
    store_id, ids = science
    content = owner_a.vector_stores.files.content(ids["orbit"], vector_store_id=store_id)
    assert [part.text for part in content] == ["Planets travel around the sun on elliptical orbits described by Kepler."]


def test_attributes_can_be_updated_and_search_sees_them(owner_a):
    store = owner_a.vector_stores.create()
    file = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("c.txt", b"comets have tails"), **POLL)
    updated = owner_a.vector_stores.files.update(file.id, vector_store_id=store.id, attributes={"kind": "comet"})
    assert updated.attributes == {"kind": "comet"}
    page = owner_a.vector_stores.search(store.id, query="tails", filters={"type": "eq", "key": "kind", "value": "comet"})
    assert [item.file_id for item in page.data] == [file.id]


# --- search ---------------------------------------------------------------------------------


def test_search_ranks_the_answering_file_first_with_scores_in_0_1(owner_a, science):
    store_id, ids = science
    page = owner_a.vector_stores.search(store_id, query="why does the sea rise and fall each day")
    assert found(page, ids)[0] == "tides"
    scores = [item.score for item in page.data]
    assert scores == sorted(scores, reverse=True) and all(0 <= score <= 1 for score in scores)
    assert page.data[0].attributes == {"topic": "astronomy", "year": 2020, "reviewed": False}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "eq", "key": "topic", "value": "astronomy"}, {"orbit", "tides"}),
        ({"type": "ne", "key": "topic", "value": "astronomy"}, {"volcano", "bread"}),
        ({"type": "gt", "key": "year", "value": 2020}, {"bread", "orbit"}),
        ({"type": "gte", "key": "year", "value": 2020}, {"bread", "orbit", "tides"}),
        ({"type": "lt", "key": "year", "value": 2020}, {"volcano"}),
        ({"type": "lte", "key": "year", "value": 2020}, {"volcano", "tides"}),
        ({"type": "in", "key": "topic", "value": ["cooking", "geology"]}, {"volcano", "bread"}),
        ({"type": "nin", "key": "topic", "value": ["cooking", "geology"]}, {"orbit", "tides"}),
        ({"type": "eq", "key": "reviewed", "value": True}, {"volcano", "orbit"}),
        ({"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "astronomy"},
                                     {"type": "lt", "key": "year", "value": 2022}]}, {"tides"}),
        ({"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "cooking"},
                                    {"type": "gte", "key": "year", "value": 2023}]}, {"bread", "orbit"}),
        # An empty key names an attribute no file has (found by the strict fuzz checks: a 400).
        ({"type": "eq", "key": "", "value": "x"}, set()),
    ],
)
def test_search_filters_select_files_by_attributes(owner_a, science, filters, expected):
    store_id, ids = science
    page = owner_a.vector_stores.search(store_id, query="the sun, the moon, bread and lava", filters=filters, max_num_results=50)
    assert set(found(page, ids)) == expected


def test_max_num_results_caps_the_page(owner_a, science):
    store_id, _ = science
    assert len(owner_a.vector_stores.search(store_id, query="the sun and the moon", max_num_results=1).data) == 1


def test_score_threshold_drops_weaker_results(owner_a, science):
    store_id, _ = science
    everything = owner_a.vector_stores.search(store_id, query="bread dough lava planets")
    cut = owner_a.vector_stores.search(store_id, query="bread dough lava planets", ranking_options={"score_threshold": 0.9})
    assert len(cut.data) < len(everything.data) and all(item.score >= 0.9 for item in cut.data)


def test_a_list_of_queries_is_searched_and_rewrite_query_searches_their_content_words(owner_a, science):
    store_id, ids = science
    page = owner_a.vector_stores.search(store_id, query=["kepler orbits", "planets"])
    assert page.search_query == ["kepler orbits", "planets"] and found(page, ids)[0] == "orbit"
    rewritten = owner_a.vector_stores.search(store_id, query="What are the orbits that Kepler described?", rewrite_query=True)
    assert rewritten.search_query == ["orbits kepler described"] and found(rewritten, ids)[0] == "orbit"


# --- deleting -------------------------------------------------------------------------------


def chunks_of_store(db: Database, store_id: str) -> int:
    with db.engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM vector_store_chunks c JOIN vector_stores s ON s.seq = c.vector_store_seq WHERE s.id = :id"),
            {"id": store_id},
        ).scalar_one()


def test_deleting_a_file_removes_it_from_its_stores_with_its_chunks(owner_a, server_db):
    store = owner_a.vector_stores.create()
    file = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("gone.txt", b"ephemeral words"), **POLL)
    assert chunks_of_store(server_db, store.id) == 1
    owner_a.files.delete(file.id)
    with pytest.raises(openai.NotFoundError):
        owner_a.vector_stores.files.retrieve(file.id, vector_store_id=store.id)
    assert owner_a.vector_stores.retrieve(store.id).file_counts.total == 0
    assert chunks_of_store(server_db, store.id) == 0
    assert owner_a.vector_stores.search(store.id, query="ephemeral").data == []


def test_removing_a_file_from_a_store_keeps_the_file(owner_a, server_db):
    store = owner_a.vector_stores.create()
    file = owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("kept.txt", b"kept words"), **POLL)
    deleted = owner_a.vector_stores.files.delete(file.id, vector_store_id=store.id)
    assert (deleted.object, deleted.deleted) == ("vector_store.file.deleted", True)
    assert chunks_of_store(server_db, store.id) == 0
    assert owner_a.files.retrieve(file.id).id == file.id


def test_deleting_a_store_removes_its_chunks(owner_a, server_db):
    store = owner_a.vector_stores.create()
    owner_a.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("doomed.txt", b"doomed words"), **POLL)
    deleted = owner_a.vector_stores.delete(store.id)
    assert (deleted.object, deleted.deleted) == ("vector_store.deleted", True)
    assert chunks_of_store(server_db, store.id) == 0
    with pytest.raises(openai.NotFoundError):
        owner_a.vector_stores.retrieve(store.id)


# --- isolation and bad input ----------------------------------------------------------------


def test_another_key_sees_nothing_of_a_store(owner_a, owner_b, science):
    store_id, ids = science
    assert store_id not in [store.id for store in owner_b.vector_stores.list(limit=100)]
    calls = [
        lambda: owner_b.vector_stores.retrieve(store_id),
        lambda: owner_b.vector_stores.search(store_id, query="lava"),
        lambda: owner_b.vector_stores.files.list(store_id),
        lambda: owner_b.vector_stores.files.retrieve(ids["tides"], vector_store_id=store_id),
        lambda: owner_b.vector_stores.delete(store_id),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    assert owner_a.vector_stores.retrieve(store_id).file_counts.completed == 4


def test_another_keys_file_cannot_be_added_to_a_store(owner_a, owner_b):
    foreign = upload(owner_a, "mine.txt", "mine")
    store = owner_b.vector_stores.create()
    with pytest.raises(openai.NotFoundError) as caught:
        owner_b.vector_stores.files.create(vector_store_id=store.id, file_id=foreign)
    assert caught.value.body["message"] == f"No file found with id '{foreign}'."
    assert owner_b.vector_stores.retrieve(store.id).file_counts.total == 0


def test_an_unknown_store_is_openais_404(owner_a):
    with pytest.raises(openai.NotFoundError) as caught:
        owner_a.vector_stores.retrieve("vs_nothing")
    assert caught.value.body == {
        "message": "No vector store found with id 'vs_nothing'.", "type": "invalid_request_error",
        "param": "vector_store_id", "code": "not_found",
    }


def test_a_file_not_in_the_store_is_openais_404(owner_a, science):
    store_id, _ = science
    with pytest.raises(openai.NotFoundError) as caught:
        owner_a.vector_stores.files.retrieve("file-elsewhere", vector_store_id=store_id)
    assert caught.value.body["message"] == f"No file found with id 'file-elsewhere' in vector store '{store_id}'."


def test_creating_a_store_with_an_unknown_file_is_a_404_and_stores_nothing(owner_b):
    before = [store.id for store in owner_b.vector_stores.list(limit=100)]
    with pytest.raises(openai.NotFoundError):
        owner_b.vector_stores.create(name="never", file_ids=["file-unknown"])
    assert [store.id for store in owner_b.vector_stores.list(limit=100)] == before


@pytest.mark.parametrize(
    ("static", "param"),
    [
        # 100-4096 is the spec's own bound: its validation names the strategy.
        ({"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}, "chunking_strategy"),
        ({"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}, "chunking_strategy"),
        ({"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}, "chunking_strategy.static.chunk_overlap_tokens"),
    ],
)
def test_chunking_out_of_bounds_is_a_400_naming_the_param_and_stores_nothing(owner_b, static, param):
    store = owner_b.vector_stores.create()
    file_id = upload(owner_b, "c.txt", "chunk me")
    with pytest.raises(openai.BadRequestError) as caught:
        owner_b.vector_stores.files.create(
            vector_store_id=store.id, file_id=file_id, chunking_strategy={"type": "static", "static": static}
        )
    assert (caught.value.body["param"] or "").startswith(param)
    assert owner_b.vector_stores.files.list(store.id).data == []


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "between", "key": "year", "value": 1},
        {"type": "in", "key": "year", "value": 2020},
        {"type": "and", "filters": []},
    ],
)
def test_a_malformed_filter_is_a_400(owner_a, science, filters):
    store_id, _ = science
    with pytest.raises(openai.BadRequestError) as caught:
        owner_a.vector_stores.search(store_id, query="lava", filters=filters)
    assert (caught.value.body["param"] or "").startswith("filters")


@pytest.mark.parametrize("limit", [0, 51])
def test_max_num_results_outside_1_to_50_is_a_400(owner_a, science, limit):
    store_id, _ = science
    with pytest.raises(openai.BadRequestError):
        owner_a.vector_stores.search(store_id, query="lava", max_num_results=limit)


# --- durability (last: it restarts the module's server) ------------------------------------


def test_stores_and_their_index_outlive_a_restart(live, science):
    store_id, ids = science
    live.stop()
    live.start()
    client = clients.sdk(live, api_key=KEY_A, timeout=60)
    assert client.vector_stores.retrieve(store_id).file_counts.completed == 4
    assert found(client.vector_stores.search(store_id, query="kneading bread dough"), ids)[0] == "bread"
