"""Files, vector stores, their files and chunks, with a keyword index per dialect.

Keyword search: SQLite gets an FTS5 table over the chunk text (external content, kept in
step by triggers, Porter stemming); PostgreSQL a stored ``tsvector`` column (English
configuration) with a GIN index. Vectors are float32 bytes in ``embedding`` on both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_FTS = [
    (
        "CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5("
        "text, content='vector_store_chunks', content_rowid='seq', tokenize='porter unicode61 remove_diacritics 2')"
    ),
    (
        "CREATE TRIGGER vector_store_chunks_ai AFTER INSERT ON vector_store_chunks BEGIN "
        "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.seq, new.text); END"
    ),
    (
        "CREATE TRIGGER vector_store_chunks_ad AFTER DELETE ON vector_store_chunks BEGIN "
        "INSERT INTO vector_store_chunks_fts(vector_store_chunks_fts, rowid, text) "
        "VALUES ('delete', old.seq, old.text); END"
    ),
]
POSTGRES_FTS = [
    (
        "ALTER TABLE vector_store_chunks ADD COLUMN text_search tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
    ),
    "CREATE INDEX ix_vector_store_chunks_text_search ON vector_store_chunks USING gin (text_search)",
]


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("mime_type", sa.String(128), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_files_owner_seq", "files", ["owner", "seq"])
    op.create_table(
        "vector_stores",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_active_at", sa.BigInteger, nullable=False),
        sa.Column("expires_after", sa.JSON, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_vector_stores_owner_seq", "vector_stores", ["owner", "seq"])
    op.create_table(
        "vector_store_files",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column(
            "vector_store_seq", SEQUENCE_TYPE, sa.ForeignKey("vector_stores.seq", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("chunking_strategy", sa.JSON, nullable=False),
        sa.Column("usage_bytes", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("vector_store_seq", "file_id", name="uq_vector_store_files_store_file"),
    )
    op.create_index("ix_vector_store_files_file_id", "vector_store_files", ["file_id"])
    op.create_table(
        "vector_store_chunks",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column(
            "vector_store_seq", SEQUENCE_TYPE, sa.ForeignKey("vector_stores.seq", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "vector_store_file_seq",
            SEQUENCE_TYPE,
            sa.ForeignKey("vector_store_files.seq", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("n_tokens", sa.Integer, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_vector_store_chunks_store", "vector_store_chunks", ["vector_store_seq"])
    op.create_index("ix_vector_store_chunks_file", "vector_store_chunks", ["vector_store_file_seq", "position"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER vector_store_chunks_ad")
        op.execute("DROP TRIGGER vector_store_chunks_ai")
        op.execute("DROP TABLE vector_store_chunks_fts")
    op.drop_table("vector_store_chunks")
    op.drop_index("ix_vector_store_files_file_id", table_name="vector_store_files")
    op.drop_table("vector_store_files")
    op.drop_index("ix_vector_stores_owner_seq", table_name="vector_stores")
    op.drop_table("vector_stores")
    op.drop_index("ix_files_owner_seq", table_name="files")
    op.drop_table("files")
