"""The organisation's own settings (revision 0017): one row per setting (its data retention
type); a project's are columns of ``projects``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import Base


class OrganizationSetting(Base):
    __tablename__ = "organization_settings"

    name: Mapped[str] = mapped_column(StoredText(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
