"""Which MCP servers the service may connect to (llm_backend/mcp/egress.py): the address
classes refused without the operator's say-so, and how a URL matches an allowed prefix."""

from __future__ import annotations

import ipaddress

import pytest

from llm_backend.mcp.egress import PublicOnlyBackend, Refused, ServerPolicy, is_public, shown
from tests.support.mcp_server import listening_socket

REFUSED_ADDRESSES = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:c0a8:101::",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_private_loopback_link_local_and_embedding_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


# Issue #47 found these let through (a connection was attempted): IPv4-compatible,
# IPv4-translated, local-use NAT64 and site-local IPv6, each around a loopback address.
EMBEDDING_FORMS = [
    "::127.0.0.1", "::169.254.169.254", "::ffff:0:127.0.0.1", "::ffff:0:10.0.0.1",
    "64:ff9b:1::7f00:1", "64:ff9b:1:7f00:0:100::", "fec0::1", "fec0::127.0.0.1",
]
# Ranges no public server is at, whatever they embed: deprecated (compatible, site-local),
# SIIT's translated form, and the local-use NAT64 prefix (RFC 8215: never global).
NOT_GLOBAL = ["::8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b:1::808:808", "fec0::8.8.8.8"]


@pytest.mark.parametrize("address", EMBEDDING_FORMS + NOT_GLOBAL)
def test_every_ipv6_form_embedding_ipv4_and_the_non_global_ranges_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", EMBEDDING_FORMS)
async def test_each_embedding_form_is_refused_before_any_connection(address):
    # Both gates: the URL's literal (policy.route), and the address connected to (a name
    # resolving to it).
    with pytest.raises(Refused, match="not a public address"):
        ServerPolicy([], public=True).route(f"http://[{address}]:8000/mcp")
    with listening_socket() as (port, connected):
        with pytest.raises(Refused, match="not a public address"):
            await PublicOnlyBackend().connect_tcp(address, port, timeout=5)
        assert not connected()


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


@pytest.mark.parametrize("path", [
    "/mcp/%2e%2e/x", "/mcp/%2E%2E/admin", "/mcp/a/%2e%2e/%2e%2e/x", "/mcp/../x", "/mcp/..;/x", "/mcp/a%2F..%2F..%2Fx",
    "/mcp/a%5C..%5C..%5Cx", "/mcp/%252e%252e/x", "/%6D%63%70/../x",
])
def test_a_path_is_compared_once_normalised_and_dot_tricks_leave_no_prefix(path):
    policy = ServerPolicy(["http://10.0.0.5:8080/mcp"], public=False)
    with pytest.raises(Refused):
        policy.route("http://10.0.0.5:8080" + path)


@pytest.mark.parametrize("path", ["/mcp/a/../tools", "/%6Dcp/tools", "/mcp/./tools", "/mcp/%7Euser"])
def test_a_path_normalised_into_the_prefix_is_the_prefixs(path):
    assert ServerPolicy(["http://10.0.0.5:8080/mcp"], public=False).route("http://10.0.0.5:8080" + path) == "listed"


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
