"""Retrieval benchmark: quality on a shipped question set, indexing throughput, search latency.

Data (bench/data/, see README there): 582 passages from the CIA World Factbook (public
domain) - background, economy overview and flag description of 194 countries - and 175
questions written for this benchmark, each with the one passage that answers it: 125
"lexical" ones (85% of their words occur in the answer) and 50 "paraphrased" ones (30%).

1. Quality: every passage indexed as its own file (real extraction, chunking, embedding),
   each question searched in three modes; recall@5 (answer among the first 5) and MRR@10,
   for each set, both together, and the even-numbered half of both (the odd half chose
   the hybrid weights in search.py, so the even half is the held-out figure).
2. Indexing throughput: passages (chunks) per second through the whole pipeline.
3. Latency at 10k chunks: the store padded to 10 000 chunks (text: windows of the corpus;
   vectors: the corpus's real embeddings plus small noise, renormalised - embedding 10k
   chunks for real would take minutes on 2 cores and does not change search cost), then
   p50/p99 of ``Searcher.search`` per mode (query embedding included).

Run: `.venv/bin/python bench/retrieval.py [--postgres] [--queries N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_backend.retrieval import search as search_module  # noqa: E402
from llm_backend.retrieval.chunking import ChunkingStrategy  # noqa: E402
from llm_backend.backends.embedding.embedder import Embedder  # noqa: E402
from llm_backend.retrieval.indexing import index_file  # noqa: E402
from llm_backend.retrieval.search import Searcher  # noqa: E402
from llm_backend.storage import Database  # noqa: E402
from llm_backend.storage.models import VectorStoreChunk  # noqa: E402
from llm_backend.storage.vector_index import NewChunk  # noqa: E402

DATA = Path(__file__).parent / "data"
OWNER = "bench"
MODES = ("vector", "keyword", "hybrid")
# The textbook fusion (Cormack et al. 2009: k=60, equal weights), measured beside ours.
TEXTBOOK_RRF = {"k": 60, "hybrid_search": {"embedding_weight": 1.0, "text_weight": 1.0}}
# Clients' own weights (the file_search tool's ``ranking_options.hybrid_search``), and
# ``rewrite_query``, each measured beside our default fusion (vector 1, keyword 2).
VARIANTS = {
    "hybrid_weights_1_1": {"ranking_options": {"hybrid_search": {"embedding_weight": 1, "text_weight": 1}}},
    "hybrid_weights_2_1": {"ranking_options": {"hybrid_search": {"embedding_weight": 2, "text_weight": 1}}},
    "hybrid_weights_1_4": {"ranking_options": {"hybrid_search": {"embedding_weight": 1, "text_weight": 4}}},
    "hybrid_weights_1_0": {"ranking_options": {"hybrid_search": {"embedding_weight": 1, "text_weight": 0}}},
    "hybrid_weights_0_1": {"ranking_options": {"hybrid_search": {"embedding_weight": 0, "text_weight": 1}}},
    "hybrid_rewrite_query": {"rewrite_query": True},
}
SCALE_CHUNKS = 10_000


def load() -> tuple[list[dict], list[dict]]:
    passages = [json.loads(line) for line in (DATA / "factbook_passages.jsonl").open()]
    questions = []
    for kind, name in (("lexical", "factbook_questions.jsonl"), ("paraphrased", "factbook_questions_paraphrased.jsonl")):
        questions += [{**json.loads(line), "set": kind} for line in (DATA / name).open()]
    return passages, questions


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def index_corpus(db: Database, embedder: Embedder, passages: list[dict]) -> tuple[str, dict[str, str], dict]:
    log(f"indexing {len(passages)} passages")
    store = db.vector_index.create_store(OWNER, "factbook")
    passage_of: dict[str, str] = {}
    started = time.perf_counter()
    for passage in passages:
        file_id = "file-" + passage["id"]
        passage_of[file_id] = passage["id"]
        attributes = {"country": passage["country"], "section": passage["section"]}
        db.vector_index.add_file(OWNER, store, file_id, ChunkingStrategy().as_openai(), attributes)
        index_file(db, embedder, OWNER, store, file_id, passage["text"].encode(), passage["id"] + ".txt")
    seconds = time.perf_counter() - started
    tokens = sum(embedder.count_tokens(passage["text"]) for passage in passages)
    throughput = {"chunks": len(passages), "seconds": round(seconds, 1), "chunks_per_s": round(len(passages) / seconds, 1),
                  "tokens_per_s": round(tokens / seconds)}
    return store, passage_of, throughput


def quality(searcher: Searcher, store: str, passage_of: dict[str, str], questions: list[dict]) -> dict:
    subsets = {
        "all": range(len(questions)),
        "lexical": [i for i, q in enumerate(questions) if q["set"] == "lexical"],
        "paraphrased": [i for i, q in enumerate(questions) if q["set"] == "paraphrased"],
        "held_out_even": range(0, len(questions), 2),
    }
    figures: dict = {name: {} for name in subsets}
    for mode in (*MODES, "hybrid_rrf60", *VARIANTS):
        log(f"quality: {mode}")
        ranks = []
        tuned = search_module.RRF_K
        options = dict(VARIANTS.get(mode, {}))
        if mode == "hybrid_rrf60":
            search_module.RRF_K = TEXTBOOK_RRF["k"]
            options["ranking_options"] = {"hybrid_search": TEXTBOOK_RRF["hybrid_search"]}
        try:
            for question in questions:
                page = searcher.search(OWNER, [store], question["q"], max_num_results=10, mode=mode.split("_")[0], **options)
                found = [passage_of[item["file_id"]] for item in page["data"]]
                ranks.append(found.index(question["answer"]) + 1 if question["answer"] in found else None)
        finally:
            search_module.RRF_K = tuned
        for name, members in subsets.items():
            chosen = [ranks[i] for i in members]
            figures[name][mode] = {
                "recall@5": round(sum(1 for rank in chosen if rank and rank <= 5) / len(chosen), 3),
                "mrr@10": round(sum(1 / rank for rank in chosen if rank) / len(chosen), 3),
            }
    return figures


def pad_to_scale(db: Database, store: str, passages: list[dict], embedder: Embedder) -> int:
    """Filler files until the store holds SCALE_CHUNKS chunks (see the module docstring)."""
    log(f"padding the store to {SCALE_CHUNKS} chunks")
    rng = np.random.default_rng(7)
    vectors = embedder.embed([passage["text"] for passage in passages])
    words = " ".join(passage["text"] for passage in passages).split()
    with db.sessions() as session:
        have = session.query(VectorStoreChunk).count()
    missing, per_file, file_number = SCALE_CHUNKS - have, 100, 0
    while missing > 0:
        file_id = f"file-filler-{file_number}"
        db.vector_index.add_file(OWNER, store, file_id, ChunkingStrategy().as_openai(), {"section": "filler"})
        chunks = []
        for _ in range(min(per_file, missing)):
            start = int(rng.integers(0, len(words) - 150))
            noisy = vectors[int(rng.integers(0, len(vectors)))] + rng.normal(0, 0.03, vectors.shape[1]).astype(np.float32)
            chunks.append(NewChunk(" ".join(words[start : start + 150]), 200, noisy / np.linalg.norm(noisy)))
        db.vector_index.save_chunks(OWNER, store, file_id, chunks, 0)
        missing -= len(chunks)
        file_number += 1
    with db.sessions() as session:
        return session.query(VectorStoreChunk).count()


def latency(searcher: Searcher, store: str, questions: list[dict], rounds: int) -> dict:
    log("latency")
    probe = np.random.default_rng(1).standard_normal((SCALE_CHUNKS, 384)).astype(np.float32)
    started = time.perf_counter()
    for _ in range(100):
        probe @ probe[0]
    figures: dict = {"numpy_10k_matvec_ms": round((time.perf_counter() - started) * 10, 2)}
    for mode in MODES:
        searcher.search(OWNER, [store], "warm-up", mode=mode)
        samples = []
        for index in range(rounds):
            started = time.perf_counter()
            searcher.search(OWNER, [store], questions[index % len(questions)]["q"], max_num_results=10, mode=mode)
            samples.append(time.perf_counter() - started)
        samples.sort()
        figures[mode] = {"p50_ms": round(statistics.median(samples) * 1000, 1),
                         "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 1)}
    # With a filter: attributes are checked per file before ranking.
    spec = {"type": "in", "key": "section", "value": ["flag", "economy"]}
    samples = []
    for index in range(rounds):
        started = time.perf_counter()
        searcher.search(OWNER, [store], questions[index % len(questions)]["q"], filters=spec)
        samples.append(time.perf_counter() - started)
    samples.sort()
    figures["hybrid+filter"] = {"p50_ms": round(statistics.median(samples) * 1000, 1),
                                "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 1)}
    return figures


def run(url: str, embedder: Embedder, rounds: int) -> dict:
    db = Database(url)
    db.upgrade()
    passages, questions = load()
    try:
        store, passage_of, throughput = index_corpus(db, embedder, passages)
        searcher = Searcher(db, embedder.embed)
        result = {"indexing": throughput, "quality": quality(searcher, store, passage_of, questions)}
        result["chunks"] = pad_to_scale(db, store, passages, embedder)
        result["latency"] = latency(searcher, store, questions, rounds)
        return result
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true", help="also run on a throwaway PostgreSQL cluster")
    parser.add_argument("--queries", type=int, default=200, help="searches per mode for the latency figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llmb-bench-retrieval-"))
    started = time.perf_counter()
    embedder = Embedder.from_package(work / "models")
    print(json.dumps({"embedder_load_s": round(time.perf_counter() - started, 2)}), flush=True)
    print(json.dumps({"sqlite": run(f"sqlite:///{work / 'bench.db'}", embedder, args.queries)}, indent=1), flush=True)
    if args.postgres:
        from tests.support.postgres import PostgresCluster

        cluster = PostgresCluster(durable=True).start()
        try:
            print(json.dumps({"postgresql": run(cluster.create_database(), embedder, args.queries)}, indent=1))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
