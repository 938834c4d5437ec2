"""Indexing and searching vector stores on real SQLite and PostgreSQL, with the real
embedding model."""

from __future__ import annotations

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.retrieval.chunking import ChunkingStrategy
from llm_backend.retrieval.indexing import index_file
from llm_backend.retrieval.search import Searcher
from llm_backend.storage.files import FileStore, FileTooLarge
from tests.support.embedding import shared_embedder

OWNER, OTHER = "key-a", "key-b"
DOCUMENTS = {
    "file-volcano": ("volcanoes.txt", "Magma rises through the crust and erupts from volcanoes as lava and ash.",
                     {"topic": "geology", "year": 2019}),
    "file-bread": ("baking.md", "Knead the dough, let it rise overnight, then bake the bread at a high temperature.",
                   {"topic": "cooking", "year": 2021}),
    "file-orbit": ("orbits.html", "<p>Planets travel around the sun on elliptical orbits described by Kepler.</p>",
                   {"topic": "astronomy", "year": 2023}),
    "file-tides": ("tides.txt", "The moon's gravity pulls the oceans, producing high and low tides twice a day.",
                   {"topic": "astronomy", "year": 2020}),
}


@pytest.fixture
def files(database, tmp_path):
    return FileStore(database, tmp_path / "files")


@pytest.fixture
def ids(files):
    """Our names for the documents ⇒ the ids of the uploaded files."""
    return {
        name: files.create(OWNER, filename, "assistants", [content.encode()])["id"]
        for name, (filename, content, _) in DOCUMENTS.items()
    }


@pytest.fixture
def store(database, ids):
    """A vector store of the owner with the four documents indexed."""
    embedder = shared_embedder()
    store_id = database.vector_index.create_store(OWNER, name="science")
    for name, (filename, content, attributes) in DOCUMENTS.items():
        database.vector_index.add_file(OWNER, store_id, ids[name], ChunkingStrategy().as_openai(), attributes)
        assert index_file(database, embedder, OWNER, store_id, ids[name], content.encode(), filename) == "completed"
    return store_id


@pytest.fixture
def searcher(database):
    return Searcher(database, shared_embedder().embed)


def names(page, ids) -> list[str]:
    """The documents found, by our names (files not in ``ids`` by their id)."""
    by_id = {file_id: name for name, file_id in ids.items()}
    return [by_id.get(item["file_id"], item["file_id"]) for item in page["data"]]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_ranks_the_answering_file_first(searcher, store, mode, ids):
    page = searcher.search(OWNER, [store], "why does the sea rise and fall each day due to the moon", mode=mode)
    assert names(page, ids)[0] == "file-tides"


def test_vector_search_finds_a_paraphrase_with_no_shared_words(searcher, store, ids):
    page = searcher.search(OWNER, [store], "burning mountains", mode="vector")
    assert names(page, ids)[0] == "file-volcano"


def test_keyword_search_matches_word_stems(searcher, store, ids):
    page = searcher.search(OWNER, [store], "kneading", mode="keyword")
    assert names(page, ids) == ["file-bread"]


def test_results_are_shaped_like_openais_page_with_scores_in_0_1_best_first(searcher, store):
    page = searcher.search(OWNER, [store], "planets and the sun")
    assert page["object"] == "vector_store.search_results.page" and page["search_query"] == ["planets and the sun"]
    scores = [item["score"] for item in page["data"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= score <= 1 for score in scores)
    top = page["data"][0]
    assert top["filename"] == "orbits.html" and top["attributes"] == {"topic": "astronomy", "year": 2023}
    assert top["content"] == [{"type": "text", "text": "Planets travel around the sun on elliptical orbits described by Kepler."}]


def test_max_num_results_caps_the_page(searcher, store):
    assert len(searcher.search(OWNER, [store], "the", max_num_results=2, mode="vector")["data"]) == 2


def test_score_threshold_drops_weaker_results(searcher, store, ids):
    everything = searcher.search(OWNER, [store], "bread dough", mode="vector")
    cut = searcher.search(OWNER, [store], "bread dough", mode="vector", ranking_options={"score_threshold": 0.5})
    assert names(cut, ids) == ["file-bread"] and len(everything["data"]) == 4


def test_filters_select_files_by_attributes_before_ranking(searcher, store, ids):
    spec = {"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "astronomy"},
                                       {"type": "lt", "key": "year", "value": 2022}]}
    page = searcher.search(OWNER, [store], "volcanoes erupting lava", filters=spec)
    assert names(page, ids) == ["file-tides"]


def test_a_malformed_filter_is_a_400(searcher, store):
    with pytest.raises(OpenAIError) as caught:
        searcher.search(OWNER, [store], "lava", filters={"type": "between", "key": "year", "value": 1})
    assert caught.value.status == 400


@pytest.mark.parametrize("limit", [0, 51])
def test_max_num_results_outside_1_to_50_is_a_400(searcher, store, limit):
    with pytest.raises(OpenAIError) as caught:
        searcher.search(OWNER, [store], "lava", max_num_results=limit)
    assert caught.value.param == "max_num_results"


def test_another_owners_store_is_not_found(searcher, store):
    with pytest.raises(OpenAIError) as caught:
        searcher.search(OTHER, [store], "lava")
    assert caught.value.status == 404


def test_a_removed_file_is_no_longer_found(database, searcher, store, ids):
    assert database.vector_index.remove_file(OWNER, store, ids["file-volcano"])
    page = searcher.search(OWNER, [store], "volcano lava magma")
    assert "file-volcano" not in names(page, ids) and len(page["data"]) == 3


def test_deleting_a_file_removes_it_from_its_stores_and_its_bytes_from_disk(database, files, searcher, store, ids):
    path = next(files.directory.glob(f"*/{ids['file-volcano']}"))
    assert files.delete(OWNER, ids["file-volcano"])
    assert not path.exists() and files.get(OWNER, ids["file-volcano"]) is None
    assert database.vector_index.file_status(OWNER, store, ids["file-volcano"]) is None
    assert "file-volcano" not in names(searcher.search(OWNER, [store], "volcano lava magma"), ids)


def test_another_owner_cannot_see_or_delete_a_file(files, ids):
    assert files.get(OTHER, ids["file-bread"]) is None
    assert not files.delete(OTHER, ids["file-bread"])
    assert files.get(OWNER, ids["file-bread"])["filename"] == "baking.md"


def test_an_upload_over_the_size_limit_keeps_nothing(files):
    with pytest.raises(FileTooLarge):
        files.create(OWNER, "big.txt", "assistants", [b"x" * 600, b"y" * 600], max_bytes=1000)
    assert files.list(OWNER) == ([], False) and not list(files.directory.glob("*/*"))


def test_file_bytes_come_back_as_uploaded(files):
    created = files.create(OWNER, "a.txt", "assistants", [b"hello ", b"world"], mime_type="text/plain")
    meta, data = files.content(OWNER, created["id"])
    assert data == b"hello world" and created["bytes"] == 11 and meta["mime_type"] == "text/plain"


def test_bytes_without_a_row_are_swept_at_start_up(files):
    kept = files.create(OWNER, "a.txt", "assistants", [b"kept"])
    orphan = files.directory / "zz" / "file-orphan"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"crashed before the insert")
    (files.directory / "zz" / ".file-x.partial").write_bytes(b"half")
    assert files.sweep_orphans() == 2
    assert files.content(OWNER, kept["id"])[1] == b"kept"


def test_a_file_added_after_a_search_is_found_by_the_next(database, searcher, store, ids):
    searcher.search(OWNER, [store], "glaciers")  # loads the store's vectors into memory
    database.vector_index.add_file(OWNER, store, "file-ice", ChunkingStrategy().as_openai())
    index_file(database, shared_embedder(), OWNER, store, "file-ice", b"Glaciers are rivers of ice that carve valleys.", "ice.txt")
    assert names(searcher.search(OWNER, [store], "glaciers"), ids)[0] == "file-ice"


def test_an_unsupported_file_fails_with_last_error_and_adds_no_chunks(database, searcher, store):
    database.vector_index.add_file(OWNER, store, "file-image", ChunkingStrategy().as_openai())
    status = index_file(database, shared_embedder(), OWNER, store, "file-image", b"\x89PNG\r\n", "cat.png")
    assert status == "failed"
    state = database.vector_index.file_status(OWNER, store, "file-image")
    assert state["status"] == "failed" and state["last_error"]["code"] == "unsupported_file"
    assert state["usage_bytes"] == 0


def test_a_completed_file_records_its_usage_bytes(database, store, ids):
    state = database.vector_index.file_status(OWNER, store, ids["file-bread"])
    assert state == {"status": "completed", "usage_bytes": state["usage_bytes"], "last_error": None}
    assert state["usage_bytes"] > 384 * 4


def test_a_long_file_is_chunked_and_each_chunk_is_searchable(database, searcher):
    store_id = database.vector_index.create_store(OWNER)
    # 400 tokens of filler each side: the key's chunk is one of six, ranked first (3 200 tokens,
    # 22 chunks, took 2 CPU-s of embedding a database).
    filler = "Routine maintenance notes about the office printer. " * 50
    content = filler + "The emergency exit key is kept in the blue cabinet. " + filler
    database.vector_index.add_file(OWNER, store_id, "file-long", ChunkingStrategy(200, 50).as_openai())
    index_file(database, shared_embedder(), OWNER, store_id, "file-long", content.encode(), "notes.txt",
               strategy=ChunkingStrategy(200, 50))
    page = searcher.search(OWNER, [store_id], "where is the emergency exit key", max_num_results=1)
    assert "blue cabinet" in page["data"][0]["content"][0]["text"]


def test_deleting_a_store_deletes_its_chunks(database, store):
    from sqlalchemy import func, select

    from llm_backend.storage.models import VectorStoreChunk

    assert database.vector_index.delete_store(OWNER, store)
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(VectorStoreChunk)) == 0


def test_a_store_deleted_while_its_file_is_indexed_keeps_nothing_and_fails_nothing(database, ids):
    """The interleaving the fuzzer hit (deleteVectorStore while the indexer saved a file's
    chunks: an integrity error logged at error), made certain: the store is deleted by
    another transaction right after the indexer's transaction read the file. A wrapper of
    the read stands in for the timing; the delete and the writes are real. On PostgreSQL the
    read locks the store now (the delete waits for the save: test_replica_races.py), so
    there the delete comes just before it, in the save's transaction's time."""
    from sqlalchemy import text

    from llm_backend.storage.vector_index import NewChunk

    index = database.vector_index
    store_id = index.create_store(OWNER, name="doomed")
    assert index.add_file(OWNER, store_id, ids["file-tides"], ChunkingStrategy().as_openai())
    read = index._store_file

    def read_then_lose_the_store(session, *args, **kwargs):
        if database.dialect != "sqlite":
            assert index.delete_store(OWNER, store_id)
            return read(session, *args, **kwargs)
        row = read(session, *args, **kwargs)
        assert index.delete_store(OWNER, store_id)
        return row

    index._store_file = read_then_lose_the_store
    try:
        saved = index.save_chunks(OWNER, store_id, ids["file-tides"], [NewChunk("tides", 1, [0.0] * 384)], 10)
    finally:
        del index._store_file
    assert saved is False
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM vector_store_chunks")).scalar_one() == 0


# --- what search keeps in memory (retrieval/store_cache.py) ---------------------------------


def _stores_of(database, ids, count: int) -> list[str]:
    """``count`` stores of the owner, each with the four documents indexed."""
    embedder = shared_embedder()
    made = []
    for number in range(count):
        store_id = database.vector_index.create_store(OWNER, name=f"shelf {number}")
        for name, (filename, content, attributes) in DOCUMENTS.items():
            database.vector_index.add_file(OWNER, store_id, ids[name], ChunkingStrategy().as_openai(), attributes)
            index_file(database, embedder, OWNER, store_id, ids[name], content.encode(), filename)
        made.append(store_id)
    return made


def test_the_search_cache_stays_within_its_bytes_and_searches_stay_right(database, ids):
    stores = _stores_of(database, ids, 3)
    probe = Searcher(database, shared_embedder().embed)
    probe.search(OWNER, [stores[0]], "lava")
    one_store = probe.cache.bytes  # its vectors and files
    searcher = Searcher(database, shared_embedder().embed, cache_bytes=int(one_store * 1.5))
    for store_id in stores:
        assert names(searcher.search(OWNER, [store_id], "moon tides"), ids)[0] == "file-tides"
        assert 0 < searcher.cache.bytes <= searcher.cache.max_bytes
    seqs = database.vector_index.store_seqs(OWNER, stores)
    assert searcher.cache.get("vectors", seqs[stores[0]], database.vector_index.generations([seqs[stores[0]]])[seqs[stores[0]]]) is None
    assert names(searcher.search(OWNER, [stores[0]], "moon tides"), ids)[0] == "file-tides"


def test_a_deleted_stores_vectors_leave_the_cache(database, ids, searcher):
    stores = _stores_of(database, ids, 2)
    searcher.search(OWNER, stores, "lava")
    kept = searcher.cache.bytes
    seq = database.vector_index.delete_store(OWNER, stores[0])
    searcher.forget(seq)
    assert 0 < searcher.cache.bytes < kept
    assert not [key for key in searcher.cache._entries if key[1] == seq]


def test_hybrid_weights_move_the_fusion_between_its_two_rankings(searcher, store, ids):
    query = "burning mountains of planets"  # "planets" is the one word any file has
    vector = names(searcher.search(OWNER, [store], query, mode="vector"), ids)
    keyword = names(searcher.search(OWNER, [store], query, mode="keyword"), ids)
    assert vector[0] == "file-volcano" and keyword == ["file-orbit"]

    def hybrid(embedding_weight, text_weight):
        options = {"hybrid_search": {"embedding_weight": embedding_weight, "text_weight": text_weight}}
        return names(searcher.search(OWNER, [store], query, ranking_options=options), ids)

    assert hybrid(1, 0) == vector
    assert hybrid(0, 1) == keyword
    assert hybrid(1, 10)[0] == "file-orbit" and hybrid(10, 1)[0] == "file-volcano"


@pytest.mark.parametrize(
    ("weights", "param"),
    [
        ({"embedding_weight": -1, "text_weight": 1}, "ranking_options.hybrid_search.embedding_weight"),
        ({"embedding_weight": 1, "text_weight": float("inf")}, "ranking_options.hybrid_search.text_weight"),
        ({"embedding_weight": 0, "text_weight": 0}, "ranking_options.hybrid_search"),
    ],
)
def test_hybrid_weights_that_weigh_nothing_are_a_400_naming_them(searcher, store, weights, param):
    with pytest.raises(OpenAIError) as raised:
        searcher.search(OWNER, [store], "lava", ranking_options={"hybrid_search": weights})
    assert (raised.value.status, raised.value.param) == (400, param)
