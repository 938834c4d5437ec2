"""schemathesis fuzzes the operations the local backend serves, against the pristine
OpenAI document (the stored-completion operations: tests/storage/test_conformance.py).

Checks: not_a_server_error, status_code_conformance (as ``openai_status_conformance``, see
tests/conformance/checks.py), content_type_conformance and response_schema_conformance.
Every served operation is found the way the router finds it, so an operation gets fuzzed
the day its controller lands; positive and negative cases, a fresh seed every run
(tests/support/fuzz.py). Stored objects are real: half the cases of an operation with path
parameters aim at objects created beforehand (tests/conformance/real_objects.py), so
get/update/delete/list reach their rows. The server's log of the run must hold no
error-level line for a client's mistake. `make fuzz` runs the long version and writes a
report (tests/conformance/report.py, docs/CONFORMANCE.md).
"""

from __future__ import annotations

import base64
import math
import os
import random
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, reject, seed, settings
from hypothesis import strategies as st
from schemathesis.core.errors import UnsupportedSchema
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from llm_backend.spec.adapter import admin_operation_ids, controller_name, find_controller, first_tag, is_served, operations
from llm_backend.spec.unknown_fields import unknown_paths
from tests.conftest import MODEL
from tests.conformance.real_objects import CONTROL_MODEL, FACTORIES, RealObjects
from tests.support.audio import librivox
from tests.support.document import openai_document
from tests.support.fuzz import SEED
from tests.support.server import LiveServer, log_records, log_size
from tests.storage.test_conformance import OPERATIONS as STORED_COMPLETION_OPERATIONS
from tests.conformance.checks import (
    BODY_SCHEMAS,
    ERROR_STATUSES,
    LIMITS,
    glob_matches,
    PLAIN_SCHEMAS,
    plain_schema_conformance,
    is_echoed_completion,
    echoed_completion_conformance,
    is_event_stream,
    is_negative,
    is_unfinished_response,
    openai_status_conformance,
    unfinished_response_conformance,
    sse_payload_conformance,
)


# Every OpenAI operation a controller serves, found the way the router finds them; the
# stored-completion ones need stored objects and keys: tests/storage/test_conformance.py.
DOCUMENT = openai_document()
SERVED = sorted(
    operation["operationId"]
    for path, _, operation in operations(DOCUMENT)
    if is_served(operation) and operation["operationId"] not in STORED_COMPLETION_OPERATIONS
    # Query variants (``/responses?beta=true``) share the plain operation's route and controller.
    and "?" not in path
)

# Generation is bounded so a fuzz run stays short; the values stay within the spec.
MAX_GENERATED_TOKENS = 8
MAX_STREAM_EVENTS = 100_000


@st.composite
def _declining(draw, strategy):
    """``strategy``'s draw, a case schemathesis cannot build rejected rather than failed."""
    try:
        return draw(strategy)
    except UnsupportedSchema:
        reject()


@schemathesis.hook
def before_generate_body(context, strategy):
    """Negative cases of createResponse's body now and then reach a ``not`` schemathesis
    4.32.5 cannot complement, and its deferred draw raises UnsupportedSchema out of the test
    (the same escape as schemathesis#4753, on another path: ``_with_violations``), a failure
    of the generator with no request sent. Such a draw is rejected, as schemathesis declines
    the node everywhere else; the cases it can build are all still sent."""
    return _declining(strategy)


def fuzzed(include: list[str], exclude: list[str] = (), phases: list[str] | None = None):
    """A schemathesis schema of the ``include`` operations less the ``exclude`` ones, from
    the parse the run shares (schemathesis' own is another 1.6 s per test process); with
    ``phases``, only those (else all, the coverage phase among them)."""
    built = schemathesis.openapi.from_dict(openai_document()).include(operation_id=include)
    # Schemathesis stops reading an event stream after 20 events (made for endless ones): a
    # three-prompt completion of 8 tokens each is 24, and its [DONE] went unread. Every stream
    # here is bounded (`_bound` caps the tokens; the request's timeout caps the time), so
    # each is read whole and its end checked (sse_payload_conformance).
    built.config.max_stream_events = MAX_STREAM_EVENTS
    if exclude:
        built = built.exclude(operation_id=exclude)
    if phases is not None:
        built.config.phases.update(phases=phases)
    return built


# Schemathesis builds the coverage and examples phases' cases as it collects, deselected
# test or not (45 s of CPU in every test process): the long run's schema has them only
# when `make fuzz` runs it (it sets FUZZ_EXAMPLES); in a CI run the test is deselected.
schema = fuzzed(SERVED, phases=None if "FUZZ_EXAMPLES" in os.environ else ["fuzzing"])
# Operations that run the model for every example: fewer examples in the CI run (each costs
# up to a second of generation on 2 cores), the same in `make fuzz`.
GENERATING = [
    "createChatCompletion",
    "createCompletion",
    "createResponse",
    "Compactconversation",
    "createSpeech",
    "createTranscription",
    "createTranslation",
]
# The organisation's people (users, invites, roles, groups, certificates): one honest 404
# each, whatever the request (serving/admin/people.py): a few examples prove it.
PEOPLE = sorted(
    operation["operationId"]
    for _, _, operation in operations(DOCUMENT)
    if operation["operationId"] in SERVED
    and getattr(find_controller(controller_name(operation)), "__module__", "") == "llm_backend.serving.admin.people"
)
# The audio operations' valid cases name the local audio models (a chat model is refused).
AUDIO_MODELS = {"createSpeech": "tts-1", "createTranscription": "whisper-1", "createTranslation": "whisper-1"}
# Speech of a valid case is bounded like generation: the input's first sentences.
MAX_SPEECH_CHARS = 200
SPEECH_CLIP = librivox()[1][0].read_bytes()  # 3 s of a human voice
# The coverage phase walks every boundary case of each schema, the same cases every run
# (about 7 000 for Getinputtokencounts, 5 000 for the conversation operations: minutes on
# 2 cores); the CI run is random fuzzing only, `make fuzz` keeps it.
# The organisation's control plane (the Admin API but usage): fuzzed on servers of its own
# with an admin key, since it makes keys, and a service where a managed key exists is
# closed to keyless requests for good (docs/SECURITY.md) - the shared server has no keys.
CONTROL = sorted(
    operation["operationId"]
    for _, _, operation in operations(DOCUMENT)
    if operation["operationId"] in SERVED and operation["operationId"] in admin_operation_ids(DOCUMENT)
    and first_tag(operation) != "Usage"
)
ADMIN_KEY = "sk-fuzz-admin"
quick = fuzzed(SERVED, GENERATING + CONTROL, ["examples", "fuzzing"])
people = fuzzed(PEOPLE, phases=["fuzzing"])
control = fuzzed(CONTROL, PEOPLE, ["examples", "fuzzing"])
control_postgresql = fuzzed(CONTROL, phases=["fuzzing"])
# Their CI run also leaves out schemathesis' coverage phase: it walks every boundary case of
# the schema, the same cases every run (thousands for createResponse and compaction: over
# three minutes of generation); `make fuzz` keeps it. The random fuzzing phase remains.
generating = fuzzed(GENERATING, phases=["examples", "fuzzing"])
# CI's short PostgreSQL pass fuzzes at random: the document's examples are the same requests
# on either database, run on SQLite here and on both by `make fuzz`'s long run (building
# them again cost each test process 3.5 s as it collected).
quick_postgresql = fuzzed(SERVED, GENERATING + CONTROL, ["fuzzing"])


def _without(body: dict, path: tuple) -> None:
    """``body`` without the field at ``path`` (keys and list indexes)."""
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)


def _known_fields_only(case) -> None:
    """Half the positive cases lose the fields the operation does not define (the
    generator adds random ones where the document leaves objects open), so that they reach
    the success path; the other half show that such fields get OpenAI's 400."""
    schema = BODY_SCHEMAS.get(case.operation.definition.raw.get("operationId"))
    if schema is None or random.Random(f"{SEED}:{str(case.body)[:2000]}").random() < 0.5:
        return
    for path in unknown_paths(schema, case.body, case.operation.definition.raw["operationId"]):
        _without(case.body, path)


# Headers that frame the HTTP message rather than carry the API's parameters. Negative cases
# may add undeclared headers, these among them (an empty Content-Length, seen in CI): uvicorn
# refuses such a message before any application sees it, so they are left to the HTTP client.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te", "trailer"}


def _bound(case) -> None:
    # A spec-valid request's body goes in the media type the document declares, which the
    # HTTP client sets: a drawn Content-Type ("i{;M" in a run) is another request, refused
    # with a 400 as it should be.
    dropped = FRAMING_HEADERS if is_negative(case) else FRAMING_HEADERS | {"content-type"}
    for name in [name for name in case.headers or {} if name.lower() in dropped]:
        del case.headers[name]
    body = case.body
    if not isinstance(body, dict):
        return
    if not is_negative(case):
        _known_fields_only(case)
    if not is_negative(case) and "model" in body:
        # Unknown model ids would turn nearly every valid case into a 404 (uploads have none).
        body["model"] = MODEL
    operation = case.operation.definition.raw.get("operationId")
    if not is_negative(case) and operation in AUDIO_MODELS:
        body["model"] = AUDIO_MODELS[operation]
        if isinstance(body.get("input"), str):
            body["input"] = body["input"][:MAX_SPEECH_CHARS]
        if "file" in body and random.Random(f"{SEED}:{str(body)[:2000]}").random() < 0.5:
            body["file"] = SPEECH_CLIP  # half the uploads are real speech, the rest whatever was drawn
    # (fields, cap): the Responses API's max_output_tokens has a minimum of 16.
    limits = {
        "createCompletion": (("max_tokens",), MAX_GENERATED_TOKENS),
        "createChatCompletion": (("max_tokens", "max_completion_tokens"), MAX_GENERATED_TOKENS),
        "createResponse": (("max_output_tokens",), 16),
    }
    fields, cap = limits.get(operation, ((), MAX_GENERATED_TOKENS))
    for field in fields:
        value = body.get(field)
        if value is None or (isinstance(value, (int, float)) and value > cap):
            body[field] = cap
    if operation == "createFile" and not is_negative(case):
        # A JSON part for an object field (OpenAPI's encoding) crashes Connexion's
        # handler-side typing, so llm_backend/spec/forms.py refuses it (400); SDKs send
        # bracketed fields, which tests/e2e/test_files.py covers.
        body.pop("expires_after", None)
    if operation == "createFile" and body.get("purpose") == "evals":
        # The document contradicts itself: createFile accepts purpose "evals", its
        # OpenAIFile response enum lacks it. We answer as OpenAI does (the purpose uploaded).
        body["purpose"] = "user_data"
    if isinstance(body.get("n"), int) and body["n"] > 2:
        body["n"] = 2
    for tool in body.get("tools") if isinstance(body.get("tools"), list) else []:
        if isinstance(tool, dict) and tool.get("type") == "mcp" and isinstance(tool.get("server_url"), str):
            # A drawn URL may name a real host: the fuzz connects nowhere (an address the
            # service refuses, 400 naming it; tests/e2e/test_mcp.py serves real MCP servers).
            tool["server_url"] = "http://127.0.0.1:9/mcp"


# The path parameters of the fuzzed operations: each has a pool of real objects.
def _path_parameters(operation_ids: list[str]) -> set[str]:
    return {
        segment.strip("{}")
        for path, _, operation in operations(DOCUMENT)
        if operation["operationId"] in operation_ids
        for segment in path.split("?")[0].split("/")
        if segment.startswith("{")
    }


PATH_PARAMETERS = _path_parameters(SERVED)
CONTROL_PARAMETERS = _path_parameters(CONTROL)
# Examples per operation of this run, for the report of `make fuzz`.
EXAMPLES: Counter = Counter()


# The database `make fuzz` runs against (its loop sets it: every seed on both); the CI run
# fuzzes on SQLite and adds a short pass of the storage operations on PostgreSQL.
FUZZ_DATABASE = os.environ.get("FUZZ_DATABASE") or "sqlite"


@dataclass
class Target:
    """A live server on one database, where this module's part of its log begins, its
    real objects, and the headers its cases are sent with."""

    server: LiveServer
    log_start: int
    objects: RealObjects
    headers: dict[str, str] | None = None

    @property
    def base_url(self) -> str:
        return self.server.api


@pytest.fixture(scope="module")
def postgres_server(new_database_url, tmp_path_factory):
    env = {"LLM_BACKEND_DATABASE_URL": new_database_url("postgresql")}
    with LiveServer(tmp_path_factory.mktemp("fuzz-postgresql"), env=env) as live:
        yield live


# The control plane's servers route one model (to an upstream never asked: admin operations
# are answered here), so that a project's rate limit on it exists (real_objects.rate_limit_id).
CONTROL_CONFIG = f"""
upstreams:
  - name: nowhere
    base_url: http://127.0.0.1:9/v1
    models: [{CONTROL_MODEL}]
upstream_catch_all: false
"""


def _control_server(request, database: str):
    """A server of the control plane's own: an admin key, no local models (none is needed)."""
    url = request.getfixturevalue("new_database_url")(database)
    env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_ADMIN_KEYS": ADMIN_KEY, "LLM_BACKEND_LOCAL_MODELS": "false"}
    workdir = request.getfixturevalue("tmp_path_factory").mktemp(f"fuzz-control-{database}")
    live = LiveServer(workdir, env=env, config=CONTROL_CONFIG).start()
    request.addfinalizer(live.stop)
    return live


@pytest.fixture(scope="module")
def targets(request):
    """``targets(name)``: the module's target on ``sqlite`` (the session's server),
    ``postgresql`` (a server of its own), or ``control-sqlite``/``control-postgresql`` (the
    control plane's servers), made on first use."""
    made: dict[str, Target] = {}

    def target(database: str) -> Target:
        if database not in made:
            headers = None
            if database.startswith("control-"):
                live = _control_server(request, database.removeprefix("control-"))
                headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
                parameters = CONTROL_PARAMETERS
            else:
                live = request.getfixturevalue("server" if database == "sqlite" else "postgres_server")
                parameters = PATH_PARAMETERS - CONTROL_PARAMETERS
            start = log_size(live)
            objects = RealObjects(live.api, headers)
            objects.fill(parameters)
            made[database] = Target(live, start, objects, headers)
        return made[database]

    target.made = made
    yield target
    for made_target in made.values():
        made_target.objects.close()


@quick.parametrize()
@seed(SEED)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_served_operations_conform_to_the_spec(case, targets):
    _call_and_check(case, targets("sqlite"))


@control.parametrize()
@seed(SEED)
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_control_plane_conforms_to_the_spec(case, targets):
    _call_and_check(case, targets("control-sqlite"))


@people.parametrize()
@seed(SEED)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_operations_on_people_conform_to_the_spec(case, targets):
    _call_and_check(case, targets("control-sqlite"))


@control_postgresql.parametrize()
@seed(SEED)
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_control_plane_conforms_on_postgresql(case, targets):
    _call_and_check(case, targets("control-postgresql"))


@generating.parametrize()
@seed(SEED)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_generating_operations_conform_to_the_spec(case, targets):
    _call_and_check(case, targets("sqlite"))


@quick_postgresql.parametrize()
@seed(SEED)
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_served_operations_conform_on_postgresql(case, targets):
    """CI's short PostgreSQL pass (`make fuzz` runs every operation there at length): the
    database where NUL characters and over-long values once answered 500."""
    _call_and_check(case, targets("postgresql"))


def _is_base64_embedding(case) -> bool:
    return (
        case.operation.definition.raw.get("operationId") == "createEmbedding"
        and isinstance(case.body, dict)
        and case.body.get("encoding_format") == "base64"
    )


def base64_embedding_conformance(ctx, response, case):
    """The spec types `embedding` as an array of floats only, but OpenAI (and we) answer a
    base64 string of little-endian float32 for encoding_format=base64: check that instead."""
    if response.status_code != 200:
        return None
    for item in response.json()["data"]:
        raw = base64.b64decode(item["embedding"], validate=True)
        assert raw and len(raw) % 4 == 0, "base64 embedding is not a float32 array"
        assert all(math.isfinite(value) for value in struct.unpack(f"<{len(raw) // 4}f", raw))
    return None


RAW_CONTENT = {"downloadFile"}
# Streamed as OpenAI streams them (server-sent events, the SDK's stream=True), where the
# document lists only application/json: their events are checked by sse_payload_conformance.
UNDECLARED_STREAMS = {"createCompletion"}


def _json_or_events(response) -> bool:
    return response.headers.get("content-type", [""])[0].startswith(("application/json", "text/event-stream"))


def _call_and_check(case, target: Target) -> None:
    _bound(case)
    aimed = target.objects.aim(case)
    EXAMPLES[case.operation.definition.raw["operationId"]] += 1
    if target.headers:
        case.headers = {**(case.headers or {}), **target.headers}
    response = case.call(base_url=target.base_url, timeout=120)
    target.objects.after(case, aimed, response.status_code)
    checks = [schemathesis.checks.not_a_server_error, openai_status_conformance]
    operation = case.operation.definition.raw.get("operationId")
    if operation in RAW_CONTENT and response.status_code == 200:
        # The file's own bytes, with its own content type (as OpenAI serves them); the
        # document declares them as a JSON string.
        case.validate_response(response, checks=checks)
        return
    if operation in AUDIO_MODELS and response.status_code == 200 and not _json_or_events(response):
        # OpenAI's own content types, which the document leaves out: audio/mpeg (and the
        # other formats') for speech, text/plain, application/x-subrip, text/vtt for the
        # text formats of a transcript; tests/e2e/test_audio.py decodes and reads them.
        case.validate_response(response, checks=checks)
        return
    if not (operation in UNDECLARED_STREAMS and is_event_stream(response)):
        checks.append(content_type_conformance)
    # Where the document's schema does not describe the wire format, a check of ours that
    # does: base64 embeddings, and the payloads of an event stream.
    if _is_base64_embedding(case):
        checks.append(base64_embedding_conformance)
    elif response.status_code == 200 and is_event_stream(response):
        checks.append(sse_payload_conformance)
    elif case.operation.definition.raw.get("operationId") in PLAIN_SCHEMAS:
        checks.append(plain_schema_conformance)
    elif is_unfinished_response(case, response):
        checks.append(unfinished_response_conformance)
    elif is_echoed_completion(case, response):
        checks.append(echoed_completion_conformance)
    elif response.status_code not in ERROR_STATUSES:
        # An error body is checked as OpenAI's ErrorResponse by openai_status_conformance
        # (the document declares some 404s, deleteResponse's, as a bare Error object;
        # OpenAI sends it wrapped in {"error": ...}, as every other error).
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # hundreds of generations for the operations that run the model
@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 200),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_served_operations_conform_to_the_spec_long_run(case, targets):
    """`make fuzz`: the same checks, many more (random) examples, coverage phase included,
    on ``FUZZ_DATABASE`` (the control plane on its own server there)."""
    control = case.operation.definition.raw["operationId"] in CONTROL
    _call_and_check(case, targets(("control-" if control else "") + FUZZ_DATABASE))


@pytest.mark.parametrize("run", ["ci", pytest.param("long", marks=pytest.mark.slow)])
def test_the_fuzz_run_logged_no_client_mistake_as_an_error(targets, run):
    """Last in the module: every error-level line of this run's server logs belongs to a
    request answered with 5xx (which the checks above fail anyway); a client's mistake
    (4xx, an unserved URL) is logged at info or warning."""
    assert targets.made, "no fuzz run before this check"
    for database, target in targets.made.items():
        records = log_records(target.server, target.log_start)
        statuses = {r.get("request_id"): r.get("status") for r in records if r.get("logger") == "llm_backend.access"}
        wrong = [r for r in records if r.get("level") in ("error", "critical") and (statuses.get(r.get("request_id")) or 0) < 500]
        assert not wrong, f"{database}: {len(wrong)} error-level lines for requests that were not server errors: {wrong[:3]}"


def test_every_path_parameter_of_a_served_operation_has_real_objects():
    # A newly served family (vector stores, ...) needs a factory in real_objects.py.
    assert PATH_PARAMETERS <= set(FACTORIES), sorted(PATH_PARAMETERS - set(FACTORIES))


def test_the_fuzzed_operations_are_the_local_ones():
    assert SERVED == [
        "Compactconversation",
        "CreateanAPIkeyforaserviceaccount",
        "Deleteorganizationspendlimit",
        "Deleteprojectspendlimit",
        "Getinputtokencounts",
        "Getorganizationspendlimit",
        "Getprojectspendlimit",
        "Updateorganizationspendlimit",
        "Updateprojectspendlimit",
        "activateOrganizationCertificates",
        "activateProjectCertificates",
        "add-group-user",
        "add-project-group",
        "addUploadPart",
        "admin-api-keys-create",
        "admin-api-keys-delete",
        "admin-api-keys-get",
        "admin-api-keys-list",
        "archive-project",
        "assign-group-role",
        "assign-project-group-role",
        "assign-project-user-role",
        "assign-user-role",
        "cancelBatch",
        "cancelResponse",
        "cancelUpload",
        "cancelVectorStoreFileBatch",
        "completeUpload",
        "create-group",
        "create-organization-spend-alert",
        "create-project",
        "create-project-role",
        "create-project-service-account",
        "create-project-spend-alert",
        "create-project-user",
        "create-realtime-client-secret",
        "create-role",
        "createBatch",
        "createChatCompletion",
        "createCompletion",
        "createConversation",
        "createConversationItems",
        "createEmbedding",
        "createFile",
        "createModeration",
        "createResponse",
        "createSpeech",
        "createTranscription",
        "createTranslation",
        "createUpload",
        "createVectorStore",
        "createVectorStoreFile",
        "createVectorStoreFileBatch",
        "deactivateOrganizationCertificates",
        "deactivateProjectCertificates",
        "delete-group",
        "delete-invite",
        "delete-organization-spend-alert",
        "delete-project-api-key",
        "delete-project-role",
        "delete-project-service-account",
        "delete-project-spend-alert",
        "delete-project-user",
        "delete-role",
        "delete-user",
        "deleteCertificate",
        "deleteConversation",
        "deleteConversationItem",
        "deleteFile",
        "deleteResponse",
        "deleteVectorStore",
        "deleteVectorStoreFile",
        "downloadFile",
        "getCertificate",
        "getConversation",
        "getConversationItem",
        "getResponse",
        "getVectorStore",
        "getVectorStoreFile",
        "getVectorStoreFileBatch",
        "inviteUser",
        "list-audit-logs",
        "list-group-role-assignments",
        "list-group-users",
        "list-groups",
        "list-invites",
        "list-organization-spend-alerts",
        "list-project-api-keys",
        "list-project-group-role-assignments",
        "list-project-groups",
        "list-project-rate-limits",
        "list-project-roles",
        "list-project-service-accounts",
        "list-project-spend-alerts",
        "list-project-user-role-assignments",
        "list-project-users",
        "list-projects",
        "list-roles",
        "list-user-role-assignments",
        "list-users",
        "listBatches",
        "listConversationItems",
        "listFiles",
        "listFilesInVectorStoreBatch",
        "listInputItems",
        "listModels",
        "listOrganizationCertificates",
        "listProjectCertificates",
        "listVectorStoreFiles",
        "listVectorStores",
        "modify-project",
        "modify-project-user",
        "modify-user",
        "modifyCertificate",
        "modifyVectorStore",
        "remove-group-user",
        "remove-project-group",
        "retrieve-group",
        "retrieve-group-role",
        "retrieve-group-user",
        "retrieve-invite",
        "retrieve-organization-data-retention",
        "retrieve-organization-spend-alert",
        "retrieve-project",
        "retrieve-project-api-key",
        "retrieve-project-data-retention",
        "retrieve-project-group",
        "retrieve-project-group-role",
        "retrieve-project-hosted-tool-permissions",
        "retrieve-project-role",
        "retrieve-project-service-account",
        "retrieve-project-spend-alert",
        "retrieve-project-user",
        "retrieve-project-user-role",
        "retrieve-role",
        "retrieve-user",
        "retrieve-user-role",
        "retrieveBatch",
        "retrieveFile",
        "retrieveModel",
        "retrieveVectorStoreFileContent",
        "searchVectorStore",
        "unassign-group-role",
        "unassign-project-group-role",
        "unassign-project-user-role",
        "unassign-user-role",
        "update-group",
        "update-organization-data-retention",
        "update-organization-spend-alert",
        "update-project-data-retention",
        "update-project-hosted-tool-permissions",
        "update-project-rate-limits",
        "update-project-role",
        "update-project-service-account",
        "update-project-spend-alert",
        "update-role",
        "updateConversation",
        "updateVectorStoreFileAttributes",
        "uploadCertificate",
        "usage-audio-speeches",
        "usage-audio-transcriptions",
        "usage-code-interpreter-sessions",
        "usage-completions",
        "usage-costs",
        "usage-embeddings",
        "usage-file-search-calls",
        "usage-images",
        "usage-moderations",
        "usage-vector-stores",
        "usage-web-search-calls",
    ]


def test_every_documented_limit_names_a_served_operation():
    # A row of docs/CONFORMANCE.md's table whose operations match nothing is a typo that
    # would silently excuse nothing (or a refusal that no longer exists).
    served = [*SERVED, *STORED_COMPLETION_OPERATIONS]
    assert len(LIMITS) > 20
    unmatched = [limit for limit in LIMITS if not any(glob_matches(name, op) for name in limit.operations for op in served)]
    assert unmatched == []
