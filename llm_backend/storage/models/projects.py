"""The control plane's tenants: projects and their service accounts (revision 0013); a
project's managed keys are ``keys.ApiKey`` rows naming it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base


class Project(Base):
    """A tenant: every stored object's ``owner`` is a project's id. A static project's id is
    the owner of static keys in the settings (their name, or a digest of an unnamed key);
    the others are ``proj_…``, made by the Admin API, ``llm-backend keys`` or revision 0013
    (one per managed key that existed before projects)."""

    __tablename__ = "projects"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(128), unique=True)
    name: Mapped[str] = mapped_column(StoredText(256, param="name"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    static: Mapped[bool] = mapped_column(Boolean, default=False)
    # The document's data retention type (``organization_default`` ... ); serving/admin/retention.py.
    retention: Mapped[str] = mapped_column(StoredText(48), default="organization_default", server_default="organization_default")
    # Hosted tools this project's requests may use: {"file_search": false, ...} (absent: allowed).
    hosted_tools: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class ServiceAccount(Base):
    """A project's service account: a name for its keys (OpenAI's bot user)."""

    __tablename__ = "service_accounts"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    project_id: Mapped[str] = mapped_column(StoredText(128))
    name: Mapped[str] = mapped_column(StoredText(256, param="name"))
    role: Mapped[str] = mapped_column(StoredText(16), default="member")
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Deleted: gone from the API, its keys revoked; the row stays so usage and the audit log still name it.
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (Index("ix_service_accounts_project_seq", "project_id", "seq"),)


class ProjectRateLimit(Base):
    """A project's limits on one model (revision 0015): NULL is no limit. Counted in
    ``rate_limit_counters`` by every replica together (http/project_limits.py)."""

    __tablename__ = "project_rate_limits"

    project_id: Mapped[str] = mapped_column(StoredText(128), primary_key=True)
    model: Mapped[str] = mapped_column(StoredText(256, param="rate_limit_id"), primary_key=True)
    max_requests_per_1_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_tokens_per_1_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_images_per_1_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_audio_megabytes_per_1_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_requests_per_1_day: Mapped[int | None] = mapped_column(BigInteger, default=None)
    batch_1_day_max_input_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
