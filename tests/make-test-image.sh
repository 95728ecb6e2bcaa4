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
buildlog="$(mktemp)"
trap 'rm -f "$buildlog"' EXIT
if ! "$ENGINE" build -t "$IMAGE" "$HERE/images/hello" >"$buildlog" 2>&1; then
  tail -n 30 "$buildlog" >&2
  die "$ENGINE build failed"
fi

# Check the default command. Detached + logs: an attached `podman run` hangs on the minik
# development machines.
run_opts=()
if [[ "$ENGINE" == podman ]]; then
  # podman's default rlimits (nofile 1048576, nproc 32768) can exceed the hard limits of a VM,
  # and then runc fails ("error setting rlimit type 7/6"): stay within the caller's limits.
  nofile="$(ulimit -Hn)" nproc="$(ulimit -Hu)"
  [[ "$nofile" == unlimited || "$nofile" -gt 1048576 ]] && nofile=1048576
  [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
  run_opts+=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
fi
check="minik-test-image-check-$$"
trap 'rm -f "$buildlog"; "$ENGINE" rm -f "$check" >/dev/null 2>&1 || true' EXIT
"$ENGINE" run -d --name "$check" "${run_opts[@]}" "$IMAGE" >/dev/null
"$ENGINE" wait "$check" >/dev/null
out="$("$ENGINE" logs "$check" 2>&1)"
[[ "$out" == "hello from minik" ]] || die "$IMAGE printed '$out', expected 'hello from minik'"
log "done: $IMAGE in $(( $(date +%s) - start ))s"
