"""Searching vector stores: exact vector ranking, keyword ranking, and their fusion.

- Vector: cosine against every chunk vector of the store, exactly, with numpy. A store's
  vectors are read once into a matrix and kept in memory until its ``generation`` changes
  (10k chunks x 384 dims = 15 MB; one matrix-vector product is about 1 ms here), so no
  approximate index is needed at this scale (docs/RETRIEVAL.md has the figures); the
  matrices are bounded in bytes (``store_cache.py``).
- Keyword: the database's full-text index (SQLite FTS5 bm25, PostgreSQL ts_rank_cd).
- Hybrid (the default): weighted reciprocal-rank fusion, score = sum of w/(k + rank) over
  the rankings a chunk appears in (one vector and one keyword ranking per query string).
  RRF needs no calibration between cosine and bm25 scales. Cormack et al.'s k=60 with equal
  weights lost to keyword-only on our benchmark (recall@5 0.754 vs 0.789 on 175 questions):
  MiniLM is weaker than bm25 on entity-heavy text, and k=60 lets its mid-ranked guesses
  outvote a first keyword hit. k=1 with keyword weight 2, chosen on half the questions,
  beats both on the other half (recall@5 0.830 vs 0.795 keyword / 0.682 vector; MRR 0.776
  vs 0.762 / 0.566). docs/RETRIEVAL.md has the whole table.

Scores are in [0, 1], best first: hybrid divides the fused score by its maximum (first in
every ranking); vector is the cosine clipped at 0; keyword is bm25 relative to the best
hit. ``ranking_options.score_threshold`` drops results below it;
``ranking_options.hybrid_search`` (``embedding_weight``, ``text_weight``: the file_search
tool's) replaces the two fusion weights, a ranking of weight 0 is not run at all.
``rewrite_query`` searches with the query's content words (``rewrite``), shown in
``search_query``. ``filters`` select files by their attributes before ranking, so they
never shrink a result list after the cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import errors
from ..budgets import check_count
from ..errors import bad_request, vector_store_not_found
from ..storage.keyword_index import query_words
from ..storage.vector_index import IndexedFile, StoreVectors
from .filters import compile_filter
from .store_cache import StoreCache

if TYPE_CHECKING:  # numpy is imported where it is used: the API process starts without it (issue #27)
    import numpy as np

Mode = Literal["hybrid", "vector", "keyword"]
RRF_K = 1
WEIGHTS = {"vector": 1.0, "keyword": 2.0}
MAX_RESULTS = 50
# A search's queries (ours: OpenAI documents no bound). Each is embedded and ranked, so their
# count and their length in all are the search's work (issue #39: an 8 MB query was minutes
# of the embedder's time); 32 768 characters are about an embedding input's 8192 tokens.
MAX_QUERIES = 16
MAX_QUERY_CHARACTERS = 32_768
# How deep each ranking goes before fusion.
CANDIDATES = 100
# What one cached file costs beside its name and attributes (ids, the object): an estimate.
FILE_BYTES = 200


def parse_queries(query: Any) -> list[str]:
    queries = [query] if isinstance(query, str) else query
    check_count(queries, MAX_QUERIES, "query")  # before any is read
    if not isinstance(queries, list) or not queries or not all(isinstance(item, str) for item in queries):
        raise bad_request("Invalid 'query': expected a string or a non-empty array of strings.", "query", "invalid_value")
    if sum(len(item) for item in queries) > MAX_QUERY_CHARACTERS:
        raise bad_request(
            f"Invalid 'query': string too long. A search's queries can hold at most {MAX_QUERY_CHARACTERS} characters in all.",
            "query",
            "string_above_max_length",
        )
    if not any(item.strip() for item in queries):
        raise bad_request("Invalid 'query': the query is empty.", "query", "invalid_value")
    return queries


def parse_limit(max_num_results: Any) -> int:
    if isinstance(max_num_results, float) and max_num_results.is_integer():
        max_num_results = int(max_num_results)  # JSON Schema's integer includes 10.0
    if isinstance(max_num_results, bool) or not isinstance(max_num_results, int) or not 1 <= max_num_results <= MAX_RESULTS:
        raise bad_request(
            f"Invalid 'max_num_results': expected an integer between 1 and {MAX_RESULTS}.", "max_num_results", "invalid_value"
        )
    return max_num_results


@dataclass(frozen=True)
class Ranking:
    """What ``ranking_options`` asks: the score cut and the fusion's weights."""

    threshold: float = 0.0
    weights: tuple[float, float] = (WEIGHTS["vector"], WEIGHTS["keyword"])  # (vector, keyword)


def _weight(options: Any, name: str) -> float:
    param = f"ranking_options.hybrid_search.{name}"
    value = options.get(name) if isinstance(options, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise bad_request(f"Invalid '{param}': expected a number of at least 0.", param, "invalid_value")
    return float(value)


def parse_ranking(ranking_options: Any) -> Ranking:
    options = ranking_options or {}
    threshold = options.get("score_threshold", 0) if isinstance(options, dict) else None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise bad_request(
            "Invalid 'ranking_options.score_threshold': expected a number between 0 and 1.",
            "ranking_options.score_threshold",
            "invalid_value",
        )
    hybrid = options.get("hybrid_search")
    if hybrid is None:
        return Ranking(float(threshold))
    weights = (_weight(hybrid, "embedding_weight"), _weight(hybrid, "text_weight"))
    if not any(weights):
        raise bad_request(
            "Invalid 'ranking_options.hybrid_search': at least one weight must be above 0.",
            "ranking_options.hybrid_search",
            "invalid_value",
        )
    return Ranking(float(threshold), weights)


def rewrite(query: str) -> str:
    """``rewrite_query``: the query as a search for its content words (questions' function
    words and punctuation dropped), as OpenAI rewrites a question into a search."""
    return " ".join(query_words(query)) or query


class Searcher:
    """Search over an owner's vector stores. ``embed`` turns texts into normalised vectors
    (``Embedder.embed``); everything here is blocking: run it in a worker thread."""

    def __init__(self, database: Any, embed: Callable[[list[str]], np.ndarray], cache_bytes: int = 256 << 20) -> None:
        self._index = database.vector_index
        self._stores = database.vector_stores
        self._embed = embed
        self.cache = StoreCache(cache_bytes)

    def forget(self, store_seq: int) -> None:
        """A deleted store's cached vectors and files go."""
        self.cache.forget(store_seq)

    def _vectors(self, store_seq: int, generation: int) -> StoreVectors:
        cached = self.cache.get("vectors", store_seq, generation)
        if cached is not None:
            return cached
        fresh = self._index.vectors(store_seq)
        size = fresh.matrix.nbytes + fresh.chunk_seqs.nbytes + fresh.file_seqs.nbytes
        self.cache.put("vectors", store_seq, fresh.generation, fresh, size)
        return fresh

    def _indexed_files(self, store_seqs: list[int], generations: dict[int, int]) -> list[IndexedFile]:
        """The stores' completed files, kept per store until its generation changes."""
        files: list[IndexedFile] = []
        for store_seq in store_seqs:
            cached = self.cache.get("files", store_seq, generations[store_seq])
            if cached is None:
                cached = self._index.indexed_files([store_seq])
                size = sum(FILE_BYTES + len(f.filename) + len(str(f.attributes)) for f in cached)
                self.cache.put("files", store_seq, generations[store_seq], cached, size)
            files.extend(cached)
        return files

    def _vector_ranking(
        self, generations: dict[int, int], allowed: np.ndarray, query_vector: np.ndarray
    ) -> list[tuple[int, float]]:
        import numpy as np

        ranked: list[tuple[int, float]] = []
        for store_seq, generation in generations.items():
            vectors = self._vectors(store_seq, generation)
            if not len(vectors.chunk_seqs):
                continue
            # Score every row, then drop the filtered-out ones: cheaper than copying the
            # selected rows of the matrix.
            scores = vectors.matrix @ query_vector
            scores[~np.isin(vectors.file_seqs, allowed)] = -np.inf
            count = min(CANDIDATES, len(scores))
            top = np.argpartition(-scores, count - 1)[:count]
            top = top[np.isfinite(scores[top])]
            ranked.extend(zip(vectors.chunk_seqs[top].tolist(), scores[top].tolist()))
        ranked.sort(key=lambda item: -item[1])
        return ranked[:CANDIDATES]

    def search(
        self,
        owner: str,
        vector_store_ids: list[str],
        query: Any,
        max_num_results: int = 10,
        filters: Any = None,
        ranking_options: Any = None,
        mode: Mode = "hybrid",
        rewrite_query: bool = False,
    ) -> dict[str, Any]:
        """A ``vector_store.search_results.page``; 400 for bad arguments, 404 for a store
        that is not the owner's. Validates everything before reading anything."""
        queries = parse_queries(query)
        if rewrite_query:
            queries = [rewrite(text) for text in queries]
        limit = parse_limit(max_num_results)
        ranking = parse_ranking(ranking_options)
        predicate = compile_filter(filters) if filters is not None else None
        seqs_by_id = self._index.store_seqs(owner, vector_store_ids)
        for store_id in vector_store_ids:
            if store_id not in seqs_by_id:
                raise vector_store_not_found(store_id)
        for store_id in self._stores.expired_ids(owner, vector_store_ids):
            raise errors.vector_store_expired(store_id)
        store_seqs = list(dict.fromkeys(seqs_by_id[store_id] for store_id in vector_store_ids))
        generations = self._index.generations(store_seqs)
        files = {
            file.seq: file
            for file in self._indexed_files(store_seqs, generations)
            if predicate is None or predicate(file.attributes)
        }
        scored = self._rank(generations, files, [q for q in queries if q.strip()], mode, ranking.weights)
        hits = [(seq, score) for seq, score in scored if score >= ranking.threshold][:limit]
        texts = self._index.chunk_texts([seq for seq, _ in hits])
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [self._item(files[texts[seq][0]], texts[seq][1], score) for seq, score in hits if seq in texts],
            "has_more": False,
            "next_page": None,
        }

    def _rank(
        self,
        generations: dict[int, int],
        files: dict[int, IndexedFile],
        queries: list[str],
        mode: Mode,
        weights: tuple[float, float],
    ) -> list[tuple[int, float]]:
        import numpy as np

        if not files:
            return []
        allowed = np.fromiter(files, np.int64, len(files))
        rankings: list[tuple[float, list[tuple[int, float]]]] = []
        vector_weight, keyword_weight = weights if mode == "hybrid" else (1.0, 1.0)
        if mode in ("hybrid", "vector") and vector_weight > 0:
            for vector in self._embed(queries):
                rankings.append((vector_weight, self._vector_ranking(generations, allowed, vector)))
        if mode in ("hybrid", "keyword") and keyword_weight > 0:
            for text in queries:
                ranking = self._index.keyword_ranking(list(generations), list(files), text, CANDIDATES)
                rankings.append((keyword_weight, ranking))
        if mode == "vector":
            return [(seq, max(0.0, min(1.0, score))) for seq, score in _best_per_chunk(rankings)]
        if mode == "keyword":
            merged = _best_per_chunk(rankings)
            top = merged[0][1] if merged else 1.0
            return [(seq, score / top if top > 0 else 0.0) for seq, score in merged]
        fused: dict[int, float] = {}
        for weight, ranking in rankings:
            for rank, (seq, _) in enumerate(ranking, start=1):
                fused[seq] = fused.get(seq, 0.0) + weight / (RRF_K + rank)
        ceiling = sum(weight for weight, _ in rankings) / (RRF_K + 1)
        return sorted(((seq, score / ceiling) for seq, score in fused.items()), key=lambda item: (-item[1], item[0]))

    @staticmethod
    def _item(file: IndexedFile, text: str, score: float) -> dict[str, Any]:
        return {
            "file_id": file.file_id,
            "filename": file.filename,
            "score": round(score, 6),
            "attributes": file.attributes,
            "content": [{"type": "text", "text": text}],
        }


def _best_per_chunk(rankings: list[tuple[float, list[tuple[int, float]]]]) -> list[tuple[int, float]]:
    best: dict[int, float] = {}
    for _, ranking in rankings:
        for seq, score in ranking:
            best[seq] = max(score, best.get(seq, float("-inf")))
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))
