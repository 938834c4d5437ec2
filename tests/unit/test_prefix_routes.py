"""Prefix routes are kept per tenant, fairly (backends/prefix_routes.py, issue #39): one
tenant's many chats cannot flush the routes of another's."""

from __future__ import annotations

from llm_backend.backends.prefix_routes import PrefixRoutes, prefix_hashes


def chat(number: int) -> dict:
    return {"model": "m", "messages": [{"role": "system", "content": f"chat {number}"}, {"role": "user", "content": "hi"}]}


def test_a_tenants_routes_survive_another_tenants_flood():
    routes: PrefixRoutes[str] = PrefixRoutes(entries=64)
    bobs = prefix_hashes(chat(0), "bob")
    routes.remember(bobs, "worker-1", "bob")
    for number in range(500):  # alice: far more prefixes than the routes hold
        routes.remember(prefix_hashes(chat(number), "alice"), "worker-0", "alice")
    assert len(routes) == 64
    assert routes.holder(bobs, lambda target: True) == "worker-1"
    # Alice's own least recent routes went; her latest are kept.
    assert routes.holder(prefix_hashes(chat(499), "alice"), lambda target: True) == "worker-0"
    assert routes.holder(prefix_hashes(chat(0), "alice"), lambda target: True) is None


def test_the_tenant_holding_the_most_routes_gives_way():
    routes: PrefixRoutes[str] = PrefixRoutes(entries=8)
    for number in range(4):
        routes.remember(prefix_hashes(chat(number), "bob"), "w", "bob")  # 2 hashes a chat: bob holds 8
    routes.remember(prefix_hashes(chat(9), "carol"), "w", "carol")
    assert len(routes) == 8
    assert routes.holder(prefix_hashes(chat(9), "carol"), lambda target: True) == "w"
    assert routes.holder(prefix_hashes(chat(0), "bob"), lambda target: True) is None  # bob's oldest
    assert routes.holder(prefix_hashes(chat(3), "bob"), lambda target: True) == "w"
