#!/usr/bin/env bash
# Build the storage-provisioner addon's image, rancher's local-path-provisioner v0.0.30, from
# source, without any container registry: the binary from the Go module proxy (CGO_ENABLED=0,
# version-stamped as upstream's scripts/build does), a static busybox (Debian's busybox-static)
# as the shell the addon's helper pods run, one `import`ed layer (FROM scratch).
#
# Usage: hack/build-addon-images.sh [--engine docker|podman] [--force]
#
# Loads localhost/minik-addons/local-path-provisioner:v0.0.30 into the engine's image store; the
# last line on stdout is that image name (progress and timings go to stderr).
#
# Image layout (upstream's package/Dockerfile: alpine, /usr/bin/local-path-provisioner,
# CMD ["local-path-provisioner"]): /usr/bin/local-path-provisioner, /bin/busybox with a symlink
# per applet, /etc/passwd and /etc/group (root, nobody), /tmp; ENV PATH, same CMD.
#
# Cache (outside the checkout; --force rebuilds):
#   ${XDG_CACHE_HOME:-$HOME/.cache}/minik/addon-images/local-path-provisioner-v0.0.30-<script hash>/
#     local-path-provisioner  rootfs.tar  rootfs.tar.sha256  complete
# When complete, the Go build is skipped and the image is only imported when the engine does not
# already hold it with that rootfs. Go's module and build caches are the defaults.
#
# Env: ENGINE=docker|podman (default docker; --engine wins), BUSYBOX=<path of a static busybox>.
set -euo pipefail

NAME=local-path-provisioner
MODULE=github.com/rancher/local-path-provisioner
VERSION=v0.0.30
IMAGE="localhost/minik-addons/$NAME:$VERSION"
ENGINE="${ENGINE:-docker}"
FORCE=0
# The applets the addon's helper pods and manifests rely on (all of busybox's are linked).
REQUIRED_APPLETS=(sh mkdir rm rmdir chmod chown ls cat echo test '[' sleep cp mv ln touch true false)

log() { printf 'build-addon-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) shift; [[ $# -gt 0 ]] || die "--engine needs a value"; ENGINE="$1" ;;
    --engine=*) ENGINE="${1#--engine=}" ;;
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
case "$ENGINE" in
  docker|podman) ;;
  *) die "--engine must be docker or podman, got '$ENGINE'" ;;
esac
command -v "$ENGINE" >/dev/null 2>&1 || die "'$ENGINE' not found in PATH"

# Time in milliseconds, and "12.3s" for a duration since a start time.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $(( d / 1000 )) $(( d % 1000 / 100 )); }
T_TOTAL="$(now_ms)"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SELF_HASH="$(sha256sum "$SELF" | cut -c1-12)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/minik/addon-images"
OUT="$CACHE_ROOT/$NAME-$VERSION-$SELF_HASH"
PARTIAL="$OUT.partial.$$"
TMP=""
cleanup() {
  [[ -n "$TMP" ]] && rm -rf "$TMP"
  rm -rf "$PARTIAL"
}
trap cleanup EXIT

cache_complete() {
  [[ -f "$OUT/complete" && -x "$OUT/$NAME" && -s "$OUT/rootfs.tar" && -s "$OUT/rootfs.tar.sha256" ]]
}

# A static executable: no program interpreter (ldd is in libc-bin, on every Debian system).
is_static() {
  [[ -x "$1" ]] || return 1
  local out
  out="$(LC_ALL=C ldd "$1" 2>&1 || true)"
  [[ "$out" == *"not a dynamic executable"* || "$out" == *"statically linked"* ]]
}

# A static busybox: $BUSYBOX, else /bin/busybox, else Debian's busybox-static installed by apt
# (as tests/images/hello does, in its build stage).
find_busybox() {
  local bb="${BUSYBOX:-/bin/busybox}"
  if is_static "$bb"; then echo "$bb"; return; fi
  [[ -n "${BUSYBOX:-}" ]] && die "BUSYBOX=$BUSYBOX is not a static executable"
  log "no static busybox at /bin/busybox: installing busybox-static with apt-get"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: set BUSYBOX to a static busybox"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y --no-install-recommends busybox-static >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update >/dev/null &&
      "${sudo[@]}" apt-get install -y --no-install-recommends busybox-static >/dev/null
  } || die "could not install busybox-static"
  is_static /bin/busybox || die "/bin/busybox is still not a static executable after installing busybox-static"
  echo /bin/busybox
}

# The binary, as upstream's scripts/build makes it (CGO_ENABLED=0, -X main.VERSION=<tag>, -s -w),
# plus -trimpath. `go install module@version` when the module's go.mod has no replace/exclude
# directives (it refuses those); else a throwaway module that requires it and carries them over.
build_binary() { # outdir
  local dest="$1" info dir gomod ldflags
  export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  info="$(cd "$TMP" && go mod download -json "$MODULE@$VERSION")" || die "the Go proxy does not serve $MODULE@$VERSION"
  dir="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  gomod="$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$info")"
  [[ -d "$dir" && -f "$gomod" ]] || die "go mod download gave no Dir/GoMod for $MODULE@$VERSION"

  ldflags="-s -w"
  # Upstream stamps main.VERSION with the git tag (scripts/build: LINKFLAGS="-X main.VERSION=$VERSION").
  if grep -q -- '-X main.VERSION=' "$dir/scripts/build" 2>/dev/null && grep -qE '^\s*VERSION\s*=' "$dir/main.go"; then
    ldflags+=" -X main.VERSION=$VERSION"
  else
    log "warning: upstream's build no longer stamps main.VERSION; building unstamped"
  fi

  if ! grep -qE '^\s*(replace|exclude)\b' "$gomod"; then
    log "go install $MODULE@$VERSION (CGO_ENABLED=0)"
    (cd "$TMP" && GOBIN="$dest" go install -trimpath -ldflags "$ldflags" "$MODULE@$VERSION") ||
      die "go install $MODULE@$VERSION failed"
  else
    log "$MODULE@$VERSION has replace/exclude directives: building in a throwaway module"
    local mod="$TMP/module"
    mkdir -p "$mod"
    {
      echo "module minik.local/build/$NAME"
      echo
      echo "go $(awk '$1 == "go" { print $2; exit }' "$gomod")"
      echo
      echo "require $MODULE $VERSION"
      echo
      # Copy replace and exclude directives (single-line and block forms). A replacement by a
      # relative path points into the module's own tree: use that tree in the module cache.
      awk -v dir="$dir" '
        function emit(kind, line,   n, f, i, arrow) {
          n = split(line, f, " ")
          arrow = 0
          for (i = 1; i <= n; i++) if (f[i] == "=>") arrow = i
          if (kind == "replace" && arrow && f[arrow + 1] ~ /^\.\.?\//) {
            sub(/^\.\//, "", f[arrow + 1])
            line = ""
            for (i = 1; i <= arrow; i++) line = line f[i] " "
            line = line dir "/" f[arrow + 1]
          }
          printf "%s %s\n", kind, line
        }
        { sub(/\/\/.*/, "") }
        inblock && /^[ \t]*\)/ { inblock = ""; next }
        inblock && NF { sub(/^[ \t]+/, ""); emit(inblock, $0); next }
        /^(replace|exclude)[ \t]*\(/ { inblock = $1; next }
        /^(replace|exclude)[ \t]/ { kind = $1; sub(/^(replace|exclude)[ \t]+/, ""); emit(kind, $0) }
      ' "$gomod"
    } >"$mod/go.mod"
    (cd "$mod" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" go build -trimpath -ldflags "$ldflags" -o "$dest/$NAME" "$MODULE") ||
      die "go build of $MODULE@$VERSION in a throwaway module failed (go.mod: $mod/go.mod)"
  fi
  [[ -x "$dest/$NAME" ]] || die "no $NAME binary was built"
  is_static "$dest/$NAME" || die "$dest/$NAME is not static"
  local v
  v="$("$dest/$NAME" --version 2>&1 || true)"
  [[ "$v" == *"$VERSION"* ]] || log "warning: '$NAME --version' says '$v', expected $VERSION"
  # Upstream's tree, for the record (what the image mirrors).
  grep -E '^(FROM|COPY|CMD|ENTRYPOINT)' "$dir/package/Dockerfile" 2>/dev/null | sed 's/^/  upstream package\/Dockerfile: /' >&2 || true
}

# The image's root filesystem as one deterministic tarball.
build_rootfs() { # bindir busybox tarball
  local bin="$1" busybox="$2" tarball="$3" root="$TMP/rootfs" applet
  rm -rf "$root"
  mkdir -p "$root"/{bin,usr/bin,usr/local/bin,etc,root,tmp,var,dev,proc,sys}
  chmod 0755 "$root" "$root"/{bin,usr,usr/bin,usr/local,usr/local/bin,etc,var,dev,proc,sys}
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp"
  install -m 0755 "$bin/$NAME" "$root/usr/bin/$NAME"
  install -m 0755 "$busybox" "$root/bin/busybox"
  local applets
  applets="$("$busybox" --list)" || die "$busybox --list failed"
  for applet in $applets; do
    [[ "$applet" == busybox || "$applet" == */* ]] && continue
    ln -s busybox "$root/bin/$applet"
  done
  for applet in "${REQUIRED_APPLETS[@]}"; do
    [[ -L "$root/bin/$applet" ]] || die "busybox ($busybox) has no '$applet' applet"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/false' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:root' 'nobody:x:65534:' >"$root/etc/group"
  printf '%s\n' 'hosts: files dns' >"$root/etc/nsswitch.conf"
  chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf}
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf "$tarball" .
}

# 1. Binary and rootfs, from the cache or built.
if [[ "$FORCE" == 1 && -e "$OUT" ]]; then
  log "--force: removing $OUT"
  rm -rf "$OUT"
fi
if cache_complete; then
  log "reusing $OUT"
  log "timing: go build skipped (cached)"
else
  command -v go >/dev/null 2>&1 || die "go not found (Go 1.23 or newer is needed)"
  [[ -e "$OUT" ]] && { log "removing incomplete $OUT"; rm -rf "$OUT"; }
  mkdir -p "$CACHE_ROOT"
  TMP="$(mktemp -d "$CACHE_ROOT/tmp.XXXXXX")"
  rm -rf "$PARTIAL"
  mkdir -p "$PARTIAL"

  t="$(now_ms)"
  BB="$(find_busybox)"
  log "static busybox: $BB ($("$BB" 2>&1 | head -n1 || true))"
  log "timing: busybox $(since "$t")"

  t="$(now_ms)"
  build_binary "$PARTIAL"
  log "timing: go build $(since "$t")"

  t="$(now_ms)"
  build_rootfs "$PARTIAL" "$BB" "$PARTIAL/rootfs.tar"
  sha256sum "$PARTIAL/rootfs.tar" | cut -d' ' -f1 >"$PARTIAL/rootfs.tar.sha256"
  log "timing: rootfs $(since "$t") ($(du -h "$PARTIAL/rootfs.tar" | cut -f1))"

  date -u +%Y-%m-%dT%H:%M:%SZ >"$PARTIAL/complete"
  if ! mv -T "$PARTIAL" "$OUT" 2>/dev/null; then
    # Another run finished first: keep its result.
    cache_complete || die "could not move $PARTIAL to $OUT"
    log "$OUT appeared meanwhile (another run): using it"
  fi
fi

# 2. Import, unless the engine already holds this image with this rootfs (an imported layer's
# diff ID is the sha256 of the uncompressed tarball).
WANT_LAYER="sha256:$(cat "$OUT/rootfs.tar.sha256")"
HAVE_LAYERS="$("$ENGINE" image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$HAVE_LAYERS" == "$WANT_LAYER " ]]; then
  log "$IMAGE is already in $ENGINE"
  log "timing: import skipped"
else
  t="$(now_ms)"
  OLD_ID="$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  log "importing $OUT/rootfs.tar into $ENGINE as $IMAGE"
  # PATH and CMD are not carried by a tarball import; set them as upstream's image has them
  # (CMD, not ENTRYPOINT: the Deployment's `command:` and the helper pods' /bin/sh replace it).
  "$ENGINE" import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "CMD [\"$NAME\"]" \
    "$OUT/rootfs.tar" "$IMAGE" >&2 || die "$ENGINE import failed"
  NEW_LAYERS="$("$ENGINE" image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$IMAGE")"
  [[ "$NEW_LAYERS" == "$WANT_LAYER " ]] ||
    log "warning: $ENGINE reports layers '$NEW_LAYERS', expected '$WANT_LAYER' (the next run re-imports)"
  # The image this replaced, now untagged (fails harmlessly if something still uses it).
  NEW_ID="$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE")"
  if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
    "$ENGINE" rmi "$OLD_ID" >/dev/null 2>&1 || true
  fi
  log "timing: import ($ENGINE) $(since "$t")"
fi
log "timing: total $(since "$T_TOTAL")"
echo "$IMAGE"
