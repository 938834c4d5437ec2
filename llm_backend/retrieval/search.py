"""Searching vector stores: exact vector ranking, keyword ranking, and their fusion.

- Vector: cosine against every chunk vector of the store, exactly, with numpy. A store's
  vectors are read once into a matrix and kept in memory until its ``generation`` changes
  (10k chunks x 384 dims = 15 MB; one matrix-vector product is about 1 ms here), so no
  approximate index is needed at this scale (docs/RETRIEVAL.md has the figures).
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
hit. ``ranking_options.score_threshold`` drops results below it. ``filters`` select files by
their attributes before ranking, so they never shrink a result list after the cut.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .. import errors
from ..errors import OpenAIError, bad_request
from ..storage.vector_index import IndexedFile, StoreVectors
from .filters import compile_filter

Mode = Literal["hybrid", "vector", "keyword"]
RRF_K = 1
WEIGHTS = {"vector": 1.0, "keyword": 2.0}
MAX_RESULTS = 50
# How deep each ranking goes before fusion.
CANDIDATES = 100


def vector_store_not_found(store_id: str) -> OpenAIError:
    return errors.not_found("vector store", store_id, "vector_store_id")


def parse_queries(query: Any) -> list[str]:
    queries = [query] if isinstance(query, str) else query
    if not isinstance(queries, list) or not queries or not all(isinstance(item, str) for item in queries):
        raise bad_request("Invalid 'query': expected a string or a non-empty array of strings.", "query", "invalid_value")
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


def parse_threshold(ranking_options: Any) -> float:
    options = ranking_options or {}
    threshold = options.get("score_threshold", 0) if isinstance(options, dict) else None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise bad_request(
            "Invalid 'ranking_options.score_threshold': expected a number between 0 and 1.",
            "ranking_options.score_threshold",
            "invalid_value",
        )
    return float(threshold)


class Searcher:
    """Search over an owner's vector stores. ``embed`` turns texts into normalised vectors
    (``Embedder.embed``); everything here is blocking: run it in a worker thread."""

    def __init__(self, database: Any, embed: Callable[[list[str]], np.ndarray]) -> None:
        self._index = database.vector_index
        self._embed = embed
        self._matrices: dict[int, StoreVectors] = {}
        self._files: dict[int, tuple[int, list[IndexedFile]]] = {}
        self._lock = threading.Lock()

    def _vectors(self, store_seq: int, generation: int) -> StoreVectors:
        cached = self._matrices.get(store_seq)
        if cached is not None and cached.generation == generation:
            return cached
        fresh = self._index.vectors(store_seq)
        with self._lock:
            self._matrices[store_seq] = fresh
        return fresh

    def _indexed_files(self, store_seqs: list[int], generations: dict[int, int]) -> list[IndexedFile]:
        """The stores' completed files, kept per store until its generation changes."""
        files: list[IndexedFile] = []
        for store_seq in store_seqs:
            cached = self._files.get(store_seq)
            if cached is None or cached[0] != generations[store_seq]:
                cached = (generations[store_seq], self._index.indexed_files([store_seq]))
                with self._lock:
                    self._files[store_seq] = cached
            files.extend(cached[1])
        return files

    def _vector_ranking(
        self, generations: dict[int, int], allowed: np.ndarray, query_vector: np.ndarray
    ) -> list[tuple[int, float]]:
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
    ) -> dict[str, Any]:
        """A ``vector_store.search_results.page``; 400 for bad arguments, 404 for a store
        that is not the owner's. Validates everything before reading anything."""
        queries = parse_queries(query)
        limit = parse_limit(max_num_results)
        threshold = parse_threshold(ranking_options)
        predicate = compile_filter(filters) if filters is not None else None
        seqs_by_id = self._index.store_seqs(owner, vector_store_ids)
        for store_id in vector_store_ids:
            if store_id not in seqs_by_id:
                raise vector_store_not_found(store_id)
        store_seqs = list(dict.fromkeys(seqs_by_id[store_id] for store_id in vector_store_ids))
        generations = self._index.generations(store_seqs)
        files = {
            file.seq: file
            for file in self._indexed_files(store_seqs, generations)
            if predicate is None or predicate(file.attributes)
        }
        scored = self._rank(generations, files, [q for q in queries if q.strip()], mode)
        hits = [(seq, score) for seq, score in scored if score >= threshold][:limit]
        texts = self._index.chunk_texts([seq for seq, _ in hits])
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [self._item(files[texts[seq][0]], texts[seq][1], score) for seq, score in hits if seq in texts],
            "has_more": False,
            "next_page": None,
        }

    def _rank(
        self, generations: dict[int, int], files: dict[int, IndexedFile], queries: list[str], mode: Mode
    ) -> list[tuple[int, float]]:
        if not files:
            return []
        allowed = np.fromiter(files, np.int64, len(files))
        rankings: list[tuple[float, list[tuple[int, float]]]] = []
        if mode in ("hybrid", "vector"):
            for vector in self._embed(queries):
                rankings.append((WEIGHTS["vector"], self._vector_ranking(generations, allowed, vector)))
        if mode in ("hybrid", "keyword"):
            for text in queries:
                ranking = self._index.keyword_ranking(list(generations), list(files), text, CANDIDATES)
                rankings.append((WEIGHTS["keyword"], ranking))
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
