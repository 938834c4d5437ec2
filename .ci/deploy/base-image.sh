#!/usr/bin/env bash
# A stand-in for docker.io/library/python:3.11-slim, built from Debian bookworm (Python 3.11)
# because this CI machine cannot reach any container registry. Tagged with the official
# name, so the unchanged Dockerfile builds with --pull=never. The rootfs tarball is cached
# under $DEPLOY_CACHE (default /var/tmp/llm-backend-deploy) between runs on the same machine.
set -euo pipefail

IMAGE=docker.io/library/python:3.11-slim
CACHE=${DEPLOY_CACHE:-/var/tmp/llm-backend-deploy}
TARBALL=$CACHE/python-3.11-slim-standin.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "$IMAGE"; then
    exit 0
fi
mkdir -p "$CACHE"
if [[ ! -s $TARBALL ]]; then
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
    # The machine's egress goes through a TLS-intercepting proxy: pip and apt inside the
    # build need its CA, which the real image would not.
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$rootfs" update-ca-certificates >/dev/null
    # The official image has `python` on PATH and an apt list cache that is empty.
    ln -sf python3 "$rootfs/usr/bin/python"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
# `podman import` sets no PATH and `podman kube play` adds none.
podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$IMAGE" >/dev/null
