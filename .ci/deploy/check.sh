#!/usr/bin/env bash
# Runtime deployment check, for real, with Podman (no Kubernetes API server exists here):
#   1. the unchanged Dockerfile builds (FROM python:3.11-slim: a local stand-in, base-image.sh);
#   2. the container answers /health, /v1/models and a real chat completion from the baked-in
#      model, and its HEALTHCHECK passes;
#   3. k8s/llm-backend.yaml is played with `podman kube play` (adapted by kube_to_podman.py)
#      and the pod proves that the Secret, the ConfigMap and the PVCs arrive;
#   4. k8s/replicas/ is played: two replicas on PostgreSQL behind a stand-in for their Service
#      (HAProxy, see kube_to_podman.front_config); a chat stored through one is read through the
#      other; under load, a replica killed loses no request that had not started streaming,
#      and a replica stopped gracefully (a rolling update) loses none at all; a replica killed
#      mid-indexing and mid-background-response: the other takes over its files, fails its
#      response when the lease runs out and streams it again.
# Prints one line per check and closes with "N passed, N failed"; exits 1 on any failure.
# Usage: .ci/deploy/check.sh   (from anywhere; root, Debian 12; installs podman if missing)
# The static checks (kubernetes-validate, hadolint, Tiltfile, wiring) are pytest tests in
# tests/deploy/, run by `make test`.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3
export CONTAINERS_CONF=$HERE/containers.conf
export DEPLOY_CACHE=${DEPLOY_CACHE:-/var/tmp/llm-backend-deploy}

IMAGE=localhost/llm-backend:ci
RUN_NAME=llm-backend-ci-run
WORK=$(mktemp -d /tmp/llm-backend-deploy.XXXXXX)
PLAY=$WORK/play.yaml
REPLICAS_PLAY=$WORK/replicas.yaml
NETWORK=llm-backend-ci
SECRETS=(llm-backend-secrets llm-backend-postgres)
# PVCs become named volumes; so does the ConfigMap volume (podman 4.3).
VOLUMES=(llm-backend-models llm-backend-data llm-backend-config postgres-data-postgres-0)
REPLICA_PODS=(llm-backend-0 llm-backend-1 postgres)
API_KEY=ci-chatbot-ui-$RANDOM$RANDOM
UPSTREAM_KEY=sk-ci-upstream-$RANDOM$RANDOM
passed=0
failed=0

log() { printf '%s %s\n' "$(date +%T)" "$*"; }
pass() { passed=$((passed + 1)); log "PASS $1"; }
fail() { failed=$((failed + 1)); log "FAIL $1${2:+: $2}"; }
# check NAME COMMAND...: one counted check.
check() {
    local name=$1; shift
    local output
    if output=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(tail -c 600 <<<"$output")"; fi
}
# measured NAME COMMAND...: a check whose figures (its output's last line) are shown either way.
measured() {
    local name=$1; shift
    local output
    if output=$("$@" 2>&1); then pass "$name"; log "     $(tail -1 <<<"$output")"; else fail "$name" "$(tail -c 900 <<<"$output")"; fi
}
finish() {
    log "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit $?
}

# Everything this script creates, by name (leftovers of an interrupted run included).
remove_played() {
    [[ -f $PLAY ]] && podman kube down "$PLAY" >/dev/null 2>&1
    [[ -f $REPLICAS_PLAY ]] && podman kube down "$REPLICAS_PLAY" >/dev/null 2>&1
    [[ -f $WORK/front.pid ]] && kill "$(cat "$WORK/front.pid")" 2>/dev/null
    podman rm -f -t 2 "$RUN_NAME" >/dev/null 2>&1
    for pod in llm-backend-pod-0 "${REPLICA_PODS[@]}"; do podman pod rm -f -t 2 "$pod" >/dev/null 2>&1; done
    for volume in "${VOLUMES[@]}"; do podman volume rm -f "$volume" >/dev/null 2>&1; done
}
remove_created() {
    remove_played
    for secret in "${SECRETS[@]}"; do podman secret rm "$secret" >/dev/null 2>&1; done
    podman network rm -f "$NETWORK" >/dev/null 2>&1
}
cleanup() { remove_created; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'fail "interrupted"; exit 1' INT TERM

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready URL SECONDS: until GET URL answers 200.
wait_ready() {
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 200 ]] && return 0
        sleep 1
    done
    return 1
}

# http_status EXPECTED METHOD URL [curl args...]
http_status() {
    local expected=$1 method=$2 url=$3; shift 3
    local status
    status=$(curl -s -o "$WORK/body" -w '%{http_code}' -X "$method" "$url" "$@")
    [[ $status == "$expected" ]] || { echo "HTTP $status: $(head -c 400 "$WORK/body")"; return 1; }
}

# json_check PYTHON_EXPRESSION: evaluates it with `body` = the last response as JSON.
json_check() {
    "$PYTHON" - "$WORK/body" "$1" <<'EOF'
import json, sys
body = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    sys.exit(f"not true: {sys.argv[2]}\nbody: {json.dumps(body)[:400]}")
EOF
}

# The checks run some helpers in `bash -c`.
export WORK PYTHON
export -f http_status json_check

# ------------------------------------------------------------------ prerequisites
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null \
    || ! command -v haproxy >/dev/null; then
    log "installing podman, runc, debootstrap, haproxy (apt)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        podman buildah runc fuse-overlayfs slirp4netns debootstrap uidmap haproxy; } >"$WORK/apt.log" 2>&1 \
        || { fail "install podman" "$(tail -5 "$WORK/apt.log")"; finish; }
fi
remove_created

started=$SECONDS
log "base image docker.io/library/python:3.11-slim (stand-in, cached in $DEPLOY_CACHE)"
check "stand-in python:3.11-slim base image" "$HERE/base-image.sh"

# ------------------------------------------------------------------ 1. build
# llama-cpp-python compiles for minutes. When `make install` already built the same version on
# this machine (same portable flags: tests/deploy/test_dockerfile.py keeps the Dockerfile's
# defaults equal to the Makefile's), pip inside the build is offered that wheel through a
# build-time volume and /etc/pip.conf: RUN-only mounts, nothing lands in the image and the
# Dockerfile is unchanged. DEPLOY_COMPILE=1 compiles in the build instead (then the pip cache
# mount keeps the wheel for the next run).
build_args=()
llama_version=$(sed -n 's/^ARG LLAMA_CPP_PYTHON_VERSION=//p' "$ROOT/Dockerfile")
host_wheel=$(find "${PIP_CACHE_DIR:-$HOME/.cache/pip}/wheels" -name "llama_cpp_python-$llama_version-*.whl" 2>/dev/null | head -1)
if [[ ${DEPLOY_COMPILE:-0} != 1 && -n $host_wheel ]]; then
    mkdir -p "$WORK/wheels"
    cp "$host_wheel" "$WORK/wheels/"
    printf '[global]\nfind-links = /ci-wheels\n' >"$WORK/pip.conf"
    build_args=(-v "$WORK/wheels:/ci-wheels:ro" -v "$WORK/pip.conf:/etc/pip.conf:ro")
    log "offering the host's llama-cpp-python $llama_version wheel to the build"
fi

log "podman build of the unchanged Dockerfile"
build_started=$SECONDS
if podman build --pull=never --format docker "${build_args[@]}" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" \
    >"$WORK/build.log" 2>&1; then
    pass "Dockerfile builds ($((SECONDS - build_started))s)"
else
    fail "Dockerfile builds" "$(tail -20 "$WORK/build.log")"
    finish
fi
check "image runs as non-root user 10001" \
    bash -c "[[ \$(podman image inspect $IMAGE --format '{{.Config.User}}') == 10001:10001 ]]"

# ------------------------------------------------------------------ 2. the container
port=$(free_port)
base=http://127.0.0.1:$port
podman run -d --name "$RUN_NAME" -p "127.0.0.1:$port:8000" -e "LLM_BACKEND_API_KEYS=$API_KEY" "$IMAGE" >"$WORK/run.log" 2>&1
if wait_ready "$base/ready" 180; then pass "container becomes ready"; else
    fail "container becomes ready" "$(podman logs --tail 20 "$RUN_NAME" 2>&1)"; fi
check "container: /health without a key" http_status 200 GET "$base/health"
check "container: /v1/models lists the baked-in model" \
    bash -c "http_status 200 GET $base/v1/models -H 'Authorization: Bearer $API_KEY' && json_check \"'smollm2' in [m['id'] for m in body['data']]\""
check "container: real chat completion from the baked-in model" \
    bash -c "http_status 200 POST $base/v1/chat/completions -H 'Authorization: Bearer $API_KEY' -H 'Content-Type: application/json' \
        -d '{\"model\": \"smollm2\", \"messages\": [{\"role\": \"user\", \"content\": \"Name a colour.\"}], \"max_tokens\": 8}' \
        && json_check \"body['choices'][0]['message']['content'].strip() and body['usage']['completion_tokens'] > 0\""
check "container: HEALTHCHECK (python, no curl) passes" podman healthcheck run "$RUN_NAME"
podman rm -f -t 5 "$RUN_NAME" >/dev/null 2>&1

# ------------------------------------------------------------------ 3. podman kube play
port=$(free_port)
base=http://127.0.0.1:$port
# The Secret of k8s/secrets/llm-backend-secrets.template.yaml, with CI values, as podman 4.3
# wants it: a JSON object of base64 values (see kube_to_podman.py).
"$PYTHON" - "$WORK/secret.json" "$API_KEY" "$UPSTREAM_KEY" <<'EOF'
import base64, json, sys
path, key, upstream = sys.argv[1:]
values = {"api-keys": f"{key},ci-other-key", "chatbot-ui-api-key": key, "openai-api-key": upstream}
json.dump({k: base64.b64encode(v.encode()).decode() for k, v in values.items()}, open(path, "w"))
EOF
podman secret create llm-backend-secrets "$WORK/secret.json" >/dev/null
"$PYTHON" "$HERE/kube_to_podman.py" "$ROOT/k8s/llm-backend.yaml" \
    --publish "llm-backend:8000=$port" --image "llm-backend=$IMAGE" --secret llm-backend-secrets >"$PLAY"
if podman kube play "$PLAY" >"$WORK/play.log" 2>&1; then pass "podman kube play k8s/llm-backend.yaml"; else
    fail "podman kube play k8s/llm-backend.yaml" "$(grep -v -e syslog -e systemd "$WORK/play.log" | tail -5)"; finish; fi
ctr=$(podman ps -q --filter "pod=llm-backend-pod-0" --filter "name=llm-backend-pod-0-llm-backend")
if wait_ready "$base/ready" 180; then pass "pod becomes ready"; else
    fail "pod becomes ready" "$(podman logs --tail 20 "$ctr" 2>&1)"; fi

check "pod: Secret api-keys enforced (401 without a key, OpenAI-shaped)" \
    bash -c "http_status 401 GET $base/v1/models && json_check \"body['error']['code'] == 'invalid_api_key' and body['error']['message']\""
check "pod: Secret chatbot-ui key accepted (200)" http_status 200 GET "$base/v1/models" -H "Authorization: Bearer $API_KEY"
check "pod: ConfigMap models config applied (gpt-3.5-turbo listed)" \
    bash -c "http_status 200 GET $base/v1/models -H 'Authorization: Bearer $API_KEY' && json_check \"'gpt-3.5-turbo' in [m['id'] for m in body['data']]\""
check "pod: chatbot-ui style streamed chat on gpt-3.5-turbo ends with [DONE]" \
    bash -c "curl -sN $base/v1/chat/completions -H 'Authorization: Bearer $API_KEY' -H 'Content-Type: application/json' \
        -d '{\"model\": \"gpt-3.5-turbo\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 8, \"stream\": true}' \
        | tr -d '\\r' | grep -v '^\$' | tail -1 | grep -qx 'data: \[DONE\]'"
check "pod: Secret upstream key arrives as OPENAI_API_KEY" \
    bash -c "[[ \$(podman exec $ctr printenv OPENAI_API_KEY) == '$UPSTREAM_KEY' ]]"
check "pod: runs as uid 10001" bash -c "[[ \$(podman exec $ctr id -u) == 10001 ]]"
data_dir=$(podman volume inspect llm-backend-data --format '{{.Mountpoint}}' 2>/dev/null)
check "pod: data PVC holds the SQLite database" bash -c "ls '$data_dir' | grep -q '\.db\|\.sqlite'"
check "pod: data PVC writable by the app user" podman exec "$ctr" python -c "open('/data/.write-test', 'w').write('ok')"
models_dir=$(podman volume inspect llm-backend-models --format '{{.Mountpoint}}' 2>/dev/null)
echo seeded >"$models_dir/seeded.txt" 2>/dev/null
check "pod: models PVC mounted at /models" podman exec "$ctr" test -f /models/seeded.txt
check "pod: root filesystem read-only" \
    bash -c "[[ \$(podman inspect $ctr --format '{{.HostConfig.ReadonlyRootfs}}') == true ]] && ! podman exec $ctr touch /opt/venv/.write-test"

# ------------------------------------------------------------------ 4. replicas (k8s/replicas/)
# The single-replica pod goes first: the replicas use the same claims (named volumes here).
log "k8s/replicas: two replicas on PostgreSQL behind one Service"
remove_played
check "stand-in postgres:16 image (Debian's PostgreSQL, .ci/deploy/postgres/)" \
    bash -c "podman image exists docker.io/library/postgres:16 || podman build --pull=never -q -t docker.io/library/postgres:16 '$HERE/postgres'"
pg_password=ci-pg-$RANDOM$RANDOM
"$PYTHON" - "$WORK/postgres-secret.json" "$pg_password" <<'EOF'
import base64, json, sys
path, password = sys.argv[1:]
values = {"password": password, "database-url": f"postgresql://llm_backend:{password}@postgres:5432/llm_backend"}
json.dump({k: base64.b64encode(v.encode()).decode() for k, v in values.items()}, open(path, "w"))
EOF
podman secret create llm-backend-postgres "$WORK/postgres-secret.json" >/dev/null
podman network create "$NETWORK" >/dev/null 2>&1
service_port=$(free_port)
replica_ports=("$(free_port)" "$(free_port)")
service=http://127.0.0.1:$service_port
replica=("http://127.0.0.1:${replica_ports[0]}" "http://127.0.0.1:${replica_ports[1]}")
"$PYTHON" "$HERE/kube_to_podman.py" "$ROOT/k8s/replicas" \
    --publish "llm-backend-0:8000=${replica_ports[0]}" --publish "llm-backend-1:8000=${replica_ports[1]}" \
    --image "llm-backend=$IMAGE" --image "postgres:16=docker.io/library/postgres:16" \
    --secret llm-backend-secrets --secret llm-backend-postgres \
    --front "llm-backend=$service_port" --front-config "$WORK/front.cfg" >"$REPLICAS_PLAY"
if podman kube play --network "$NETWORK" "$REPLICAS_PLAY" >"$WORK/replicas-play.log" 2>&1; then
    pass "podman kube play k8s/replicas (2 replicas + PostgreSQL)"
else
    fail "podman kube play k8s/replicas" "$(grep -v -e syslog -e systemd "$WORK/replicas-play.log" | tail -5)"
    finish
fi
haproxy -f "$WORK/front.cfg" -db >"$WORK/front.log" 2>&1 &
echo $! >"$WORK/front.pid"

# Stand-in for the kubelet: podman 4.3 without systemd does not restart a pod's dead
# container; a cluster does (e.g. a replica that started before PostgreSQL took connections).
restart_exited() {
    local pod
    for pod in llm-backend-0 llm-backend-1; do
        [[ $(podman inspect "$pod-llm-backend" --format '{{.State.Status}}' 2>/dev/null) == exited ]] \
            && podman start "$pod-llm-backend" >/dev/null 2>&1
    done
    return 0
}
# replicas_ready SECONDS: both replicas and their Service answer /ready.
replicas_ready() {
    local deadline=$((SECONDS + $1)) url all
    while ((SECONDS < deadline)); do
        restart_exited
        all=1
        for url in "${replica[@]}" "$service"; do
            [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/ready") == 200 ]] || all=0
        done
        ((all)) && return 0
        sleep 1
    done
    return 1
}
# chats_served POD: chat completions in the pod's access log.
chats_served() { podman logs "$1-llm-backend" 2>&1 | grep -c '"path": "/v1/chat/completions"'; }

if replicas_ready 180; then pass "both replicas and their Service become ready"; else
    fail "both replicas and their Service become ready" \
        "$(for pod in llm-backend-0 llm-backend-1; do podman logs --tail 5 "$pod-llm-backend" 2>&1; done; tail -5 "$WORK/front.log")"
fi
check "replicas: one schema on the PostgreSQL pod, migrated once" \
    bash -c "[[ \$(podman exec postgres-postgres psql -U llm_backend -d llm_backend -tAc 'SELECT count(*) FROM alembic_version') == 1 ]]"
check "replicas: a chat stored through one is listed and read through the other" \
    "$PYTHON" "$HERE/replicas_check.py" crosswise "${replica[0]}" "${replica[1]}" --key "$API_KEY"
measured "replicas: a replica killed (SIGKILL) under load loses no request that had not started streaming" \
    "$PYTHON" "$HERE/replicas_check.py" under-load "$service" --key "$API_KEY" \
    --disrupt "podman kill --signal KILL llm-backend-0-llm-backend"
served_before=$(chats_served llm-backend-0)
check "replicas: the killed replica, restarted, is ready again behind the Service" replicas_ready 120
one_chat() {
    http_status 200 POST "$service/v1/chat/completions" -H "Authorization: Bearer $API_KEY" \
        -H 'Content-Type: application/json' \
        -d '{"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}'
}
sent_back() {
    # The stand-in Service checks its replicas every 0.5 s: it may not have seen the restarted
    # one ready yet when /ready answers, so chats go on for a few seconds until one reaches it.
    local deadline=$((SECONDS + 10)) sent=0
    while ((SECONDS < deadline)); do
        one_chat || return 1
        sent=$((sent + 1))
        (($(chats_served llm-backend-0) > served_before)) && return 0
        sleep 0.2
    done
    echo "the restarted replica got none of $sent chats in 10 s"
    return 1
}
check "replicas: the Service sends the restarted replica requests again" sent_back
measured "replicas: a replica killed mid-indexing and mid-background-response: the other takes over its files and fails its response" \
    "$PYTHON" "$HERE/replicas_check.py" takeover "${replica[0]}" "${replica[1]}" --key "$API_KEY" \
    --disrupt "podman kill --signal KILL llm-backend-0-llm-backend"
check "replicas: the replica killed mid-work, restarted, is ready again" replicas_ready 120
measured "replicas: a replica stopped gracefully (SIGTERM, a rolling update) under load loses no request, streams included" \
    "$PYTHON" "$HERE/replicas_check.py" under-load "$service" --key "$API_KEY" --graceful \
    --disrupt "podman stop --time 30 llm-backend-1-llm-backend"

log "total $((SECONDS - started))s"
finish
