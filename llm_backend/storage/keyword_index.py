"""Keyword ranking of chunks in the database's own full-text index (migration 0004).

SQLite: an FTS5 table ranked by ``bm25``. PostgreSQL: a ``tsvector`` column; it has no bm25
and ``ts_rank`` has no IDF, so each query word's ``ts_rank`` is weighted by bm25's idf
over the searched stores. Both rank an OR of the query's words: a question's words rarely
all occur in the passage that answers it (``plainto_tsquery`` would AND them).
"""

from __future__ import annotations

import math
import re

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 64
# Words that match most chunks: SQLite FTS5 has no stop list, and an OR query with "the"
# ranks nearly every row (PostgreSQL's english configuration drops these itself).
STOPWORDS = frozenset(
    "a an and are as at be by can did do does for from had has have how i in is it its of on or"
    " so that the their there these this those to was were what when where which who whom whose"
    " why will with you your".split()
)


def query_words(query: str) -> list[str]:
    """The query's distinct words, lower-cased, without stop words."""
    seen: dict[str, None] = {}
    for word in WORD.findall(query.lower()):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


def bm25(
    session: Session, store_seqs: list[int], file_seqs: list[int], words: list[str], limit: int
) -> list[tuple[int, float]]:
    """SQLite: FTS5's bm25 (negated: higher is better)."""
    statement = text(
        "SELECT c.seq, -bm25(vector_store_chunks_fts) AS score FROM vector_store_chunks_fts "
        "JOIN vector_store_chunks AS c ON c.seq = vector_store_chunks_fts.rowid "
        "WHERE vector_store_chunks_fts MATCH :match AND c.vector_store_seq IN :stores "
        "AND c.vector_store_file_seq IN :files ORDER BY bm25(vector_store_chunks_fts) LIMIT :limit"
    ).bindparams(bindparam("stores", expanding=True), bindparam("files", expanding=True))
    match = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
    rows = session.execute(statement, {"match": match, "stores": store_seqs, "files": file_seqs, "limit": limit})
    return [(int(seq), float(score)) for seq, score in rows]


def idf_ts_rank(
    session: Session, store_seqs: list[int], file_seqs: list[int], words: list[str], limit: int
) -> list[tuple[int, float]]:
    """PostgreSQL has no bm25 and its ts_rank no IDF: rare words must count for more.
    Score = sum over the query's words of idf(word) x ts_rank(chunk, word, 1), with
    bm25's idf over the stores' chunks. On the benchmark: recall@5 0.80 (ts_rank_cd of
    the OR query: 0.63, ts_rank: 0.76; SQLite bm25: 0.79)."""
    stores = {"stores": store_seqs}
    counts = ", ".join(
        f"count(*) FILTER (WHERE text_search @@ to_tsquery('english', :w{i}))" for i in range(len(words))
    )
    frequency = text(
        f"SELECT count(*), {counts} FROM vector_store_chunks WHERE vector_store_seq IN :stores"
    ).bindparams(bindparam("stores", expanding=True))
    total, *found = session.execute(frequency, {**stores, **{f"w{i}": w for i, w in enumerate(words)}}).one()
    weighted = [
        (word, math.log(1 + (total - df + 0.5) / (df + 0.5))) for word, df in zip(words, found) if df
    ]
    if not weighted:
        return []
    values = ", ".join(f"(to_tsquery('english', :w{i}), CAST(:idf{i} AS float8))" for i in range(len(weighted)))
    statement = text(
        f"SELECT c.seq, SUM(w.idf * ts_rank(c.text_search, w.query, 1)) AS score "
        f"FROM vector_store_chunks AS c JOIN (VALUES {values}) AS w(query, idf) ON c.text_search @@ w.query "
        "WHERE c.vector_store_seq IN :stores AND c.vector_store_file_seq IN :files "
        "GROUP BY c.seq ORDER BY score DESC, c.seq LIMIT :limit"
    ).bindparams(bindparam("stores", expanding=True), bindparam("files", expanding=True))
    params = {**stores, "files": file_seqs, "limit": limit}
    for i, (word, idf) in enumerate(weighted):
        params[f"w{i}"], params[f"idf{i}"] = word, idf
    return [(int(seq), float(score)) for seq, score in session.execute(statement, params)]
