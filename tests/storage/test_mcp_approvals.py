"""The MCP approval requests the Responses API issues (storage/mcp_approvals.py), on SQLite
and PostgreSQL: answered once, by the tenant that was asked, for the call it asked about,
and once only when two answers race (two replicas)."""

from __future__ import annotations

import asyncio


def test_an_approval_is_answered_once_by_its_owner_for_its_call(database):
    approvals = database.mcp_approvals
    approvals.issue("alice", "resp_1", {"mcpr_1": "digest-1", "mcpr_2": "digest-2"})
    assert not approvals.answer("bob", "mcpr_1", "digest-1")  # another tenant
    assert not approvals.answer("alice", "mcpr_1", "digest-2")  # another call
    assert not approvals.answer("alice", "mcpr_9", "digest-1")  # never issued
    assert approvals.answer("alice", "mcpr_1", "digest-1")
    assert not approvals.answer("alice", "mcpr_1", "digest-1")  # answered already
    assert approvals.answer("alice", "mcpr_2", "digest-2")


def test_racing_answers_of_one_approval_let_one_through(database):
    approvals = database.mcp_approvals
    approvals.issue("alice", "resp_1", {"mcpr_race": "digest"})

    async def race() -> list[bool]:
        return await asyncio.gather(*(database.run(approvals.answer, "alice", "mcpr_race", "digest") for _ in range(8)))

    assert sorted(asyncio.run(race())) == [False] * 7 + [True]
