#!/usr/bin/env bash
# Create the base image `debian:trixie-slim` locally, without any container registry.
#
# This machine (and CI) cannot reach a container registry, so `docker pull debian:trixie-slim`
# fails. We build an equivalent rootfs with debootstrap from the Debian mirror apt already uses
# and `import` it into the container engine.
#
# Usage: tests/make-base-image.sh [--force] [--engine docker|podman]
# Env:   ENGINE=docker|podman   (default docker; --engine wins)
#        IMAGE=debian:trixie-slim   SUITE=trixie   MIRROR=<url>   (override detection)
#        FORCE=1                 (same as --force)
# Exit 0 immediately if the image already exists, unless --force.
set -euo pipefail

ENGINE="${ENGINE:-docker}"
IMAGE="${IMAGE:-debian:trixie-slim}"
SUITE="${SUITE:-trixie}"
FORCE="${FORCE:-0}"

log() { printf 'make-base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --force|-f) FORCE=1 ;;
    --engine) shift; [[ $# -gt 0 ]] || die "--engine needs a value"; ENGINE="$1" ;;
    --engine=*) ENGINE="${1#--engine=}" ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
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

[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get install -y debootstrap >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null
  } || die "could not install debootstrap"
fi

# The Debian mirror apt uses: first http(s) URI of a deb822 .sources file or a one-line
# sources.list entry that points at a plain Debian archive (not -security, not third-party).
detect_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      case "$uri" in
        *debian-security*|*security.debian.org*) ;;
        */debian|*/debian/) echo "${uri%/}"; return 0 ;;
      esac
    done < <(awk 'tolower($1)=="uris:" {for (i=2;i<=NF;i++) print $i}' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      case "$uri" in
        *debian-security*|*security.debian.org*) ;;
        */debian|*/debian/) echo "${uri%/}"; return 0 ;;
      esac
    done < <(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { print $i; break } }' "$f")
  done
  return 1
}
MIRROR="${MIRROR:-$(detect_mirror || echo http://deb.debian.org/debian)}"

start=$(date +%s)
TMP="$(mktemp -d /var/tmp/minik-base.XXXXXX)"
cleanup() { rm -rf --one-file-system "$TMP"; }
trap cleanup EXIT

ROOTFS="$TMP/rootfs"
log "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
  tail -n 30 "$TMP/debootstrap.log" >&2 || true
  [[ -f "$ROOTFS/debootstrap/debootstrap.log" ]] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
  die "debootstrap failed"
fi

# Slim it down a little, the way the official slim images are: no apt lists or caches.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/log/*.log "$ROOTFS"/debootstrap || true
# Let apt-get inside builds use the same mirror (debootstrap writes sources.list with it).
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"

log "importing rootfs as $IMAGE into $ENGINE"
# PATH and CMD are not carried by a tarball import; set them like the official image does.
tar --numeric-owner -C "$ROOTFS" -c . | "$ENGINE" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  - "$IMAGE" >/dev/null

log "done: $IMAGE in $(( $(date +%s) - start ))s"
