"""Which MCP servers the service may connect to (llm_backend/mcp/egress.py): the address
classes refused without the operator's say-so, and how a URL matches an allowed prefix."""

from __future__ import annotations

import ipaddress

import pytest

from llm_backend.mcp.egress import PublicOnlyBackend, Refused, ServerPolicy, is_public, shown

REFUSED_ADDRESSES = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:c0a8:101::",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_private_loopback_link_local_and_embedding_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "64:ff9b::808:808"])
def test_public_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


def test_an_allowed_prefix_admits_its_own_paths_only():
    policy = ServerPolicy(["http://10.0.0.5:8080/mcp"], public=True)
    assert policy.route("http://10.0.0.5:8080/mcp") == "listed"
    assert policy.route("http://10.0.0.5:8080/mcp/tools") == "listed"
    assert policy.route("HTTP://10.0.0.5:8080/mcp") == "listed"
    for url in (
        "http://10.0.0.5:8080/mcpx",  # not within the path
        "http://10.0.0.5:80801/mcp",  # another port (an invalid one)
        "https://10.0.0.5:8080/mcp",  # another scheme
        "http://10.0.0.5/mcp",  # the default port is another port
        "http://10.0.0.5:8080/mcp@evil.example/",  # the path, not a user
        "http://10.0.0.5:8080/admin",
    ):
        with pytest.raises(Refused):
            policy.route(url)


def test_without_public_servers_only_the_listed_ones_are_reached():
    policy = ServerPolicy(["https://mcp.example.com/"], public=False)
    assert policy.route("https://mcp.example.com/anything") == "listed"
    with pytest.raises(Refused, match="mcp_allowed_servers"):
        policy.route("https://other.example.com/mcp")


def test_a_name_is_left_to_its_resolution_and_a_literal_is_judged_at_once():
    policy = ServerPolicy([], public=True)
    assert policy.route("https://mcp.example.com/mcp") == "public"
    assert policy.route("https://8.8.8.8/mcp") == "public"
    for url in ("http://127.0.0.1/mcp", "http://[::1]:8000/", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "ftp://8.8.8.8/"):
        with pytest.raises(Refused):
            policy.route(url)


async def test_a_name_resolving_to_loopback_is_refused_before_connecting():
    with pytest.raises(Refused, match="not a public address"):
        await PublicOnlyBackend().connect_tcp("localhost", 9, timeout=5)


def test_a_url_is_shown_without_its_secrets():
    assert shown("https://user:pass@mcp.example.com:8443/mcp?token=abc#x") == "https://mcp.example.com:8443/mcp"
