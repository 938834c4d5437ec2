"""The MCP approval requests the Responses API issued (table ``mcp_approval_requests``,
revision 0018): an approval is honoured once, by the key's tenant that was asked, for the
very call it was asked about (a digest of server label and URL, tool and arguments).

``answer`` is one conditional UPDATE: of two requests (on two replicas) answering the same
approval, one finds it unanswered, the other finds nothing, so a tool runs at most once
per approval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert, update

from .clock import database_now
from .dml import rows_changed
from .models import McpApprovalRequest

if TYPE_CHECKING:
    from .handle import DatabaseHandle


class McpApprovals:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def issue(self, owner: str, response_id: str, calls: dict[str, str]) -> None:
        """Record approval requests: their ids, each with its call's digest (at least one)."""
        rows = [
            {"id": request_id, "owner": owner, "response_id": response_id, "call_sha256": digest}
            for request_id, digest in calls.items()
        ]
        with self._database.sessions.begin() as session:
            session.execute(insert(McpApprovalRequest), rows)

    def answer(self, owner: str, request_id: str, digest: str) -> bool:
        """Mark an approval request answered; False unless it is this owner's, for this
        call, and not answered before."""
        with self._database.sessions.begin() as session:
            answered = rows_changed(
                session,
                update(McpApprovalRequest)
                .where(
                    McpApprovalRequest.id == request_id,
                    McpApprovalRequest.owner == owner,
                    McpApprovalRequest.call_sha256 == digest,
                    McpApprovalRequest.answered_at.is_(None),
                )
                .values(answered_at=database_now())
            )
            return answered == 1
