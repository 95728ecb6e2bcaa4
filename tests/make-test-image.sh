#!/usr/bin/env bash
# Build the nested-container test image localhost/minik-test/hello:1 (static busybox on scratch;
# its default command prints "hello from minik"). Needs the base image debian:trixie-slim
# (tests/make-base-image.sh creates it when missing).
#
# Usage: tests/make-test-image.sh [--force] [--engine docker|podman]
# Env:   ENGINE=docker|podman (default docker), IMAGE=localhost/minik-test/hello:1, FORCE=1
# Exit 0 immediately if the image already exists, unless --force.
set -euo pipefail

ENGINE="${ENGINE:-docker}"
IMAGE="${IMAGE:-localhost/minik-test/hello:1}"
FORCE="${FORCE:-0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'make-test-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --force|-f) FORCE=1 ;;
    --engine) shift; [[ $# -gt 0 ]] || die "--engine needs a value"; ENGINE="$1" ;;
    --engine=*) ENGINE="${1#--engine=}" ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

case "$ENGINE" in
  docker|podman) ;;
  *) die "ENGINE must be docker or podman, got '$ENGINE'" ;;
esac
command -v "$ENGINE" >/dev/null 2>&1 || die "'$ENGINE' not found in PATH"

if [[ "$FORCE" != 1 ]] && "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists in $ENGINE (use --force to rebuild)"
  exit 0
fi

ENGINE="$ENGINE" "$HERE/make-base-image.sh"

start=$(date +%s)
log "building $IMAGE with $ENGINE"
"$ENGINE" build -q -t "$IMAGE" "$HERE/images/hello" >/dev/null
if [[ "$ENGINE" == docker ]]; then
  # (Not with podman: an attached `podman run --rm` hangs on the minik development machines.)
  out="$(docker run --rm "$IMAGE")"
  [[ "$out" == "hello from minik" ]] || die "$IMAGE printed '$out', expected 'hello from minik'"
fi
log "done: $IMAGE in $(( $(date +%s) - start ))s"
