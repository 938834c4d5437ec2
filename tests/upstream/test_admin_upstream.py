"""Where the Admin API is answered in front of an upstream (``admin_api``): here by default -
the upstream organisation is never asked, with the service's upstream key, about projects or
people - and forwarded only when the operator says so (issue #40)."""

from __future__ import annotations

import time

import openai
import pytest

from tests.support.clients import admin_sdk, keyed_server
from tests.support.server import access_lines, log_size
from tests.upstream.conftest import SERVICE_KEY
from tests.upstream.test_tenancy import upstream_paths

ADMIN = "sk-admin-forwarding-3e1f"


def _gateway(server, workdir, admin_api: str):
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": server.api, "OPENAI_API_KEY": SERVICE_KEY,
        "LLM_BACKEND_ADMIN_API": admin_api,
    }
    return keyed_server(workdir, ["sk-tenant-0d3a"], [f"ops={ADMIN}"], env=env)


def test_the_admin_api_is_served_here_and_people_are_not_asked_upstream(server, tmp_path):
    with _gateway(server, tmp_path, "local") as gateway:
        org = admin_sdk(gateway, ADMIN).admin.organization
        before = log_size(server)
        assert "ops" in [project.id for project in org.projects.list()]  # the gateway's own projects
        with pytest.raises(openai.NotFoundError) as refused:
            org.users.list()
        assert refused.value.code == "no_people"
        time.sleep(0.5)  # an upstream request would be in its log by now
        assert not [path for path in upstream_paths(server, before) if "/organization/" in path]


def test_with_admin_api_upstream_the_organisation_is_the_upstreams(server, tmp_path):
    with _gateway(server, tmp_path, "upstream") as gateway:
        org = admin_sdk(gateway, ADMIN).admin.organization
        before = log_size(server)
        listed = org.projects.list()
        assert access_lines(server, "/v1/organization/projects", since=before, expect=1)  # logged just after the answer
        assert "ops" not in [project.id for project in listed]  # the upstream's projects, not the gateway's
        assert org.usage.completions(start_time=0, limit=1).object == "page"  # usage stays here
        assert not [path for path in upstream_paths(server, before) if "/usage/" in path]
