#!/usr/bin/env bash
# Build addon images from source, without any container registry, at the versions the addon
# manifests pin: the binary from the Go module proxy (CGO_ENABLED=0, version-stamped as each
# upstream's build does), one `import`ed layer (FROM scratch) laid out as upstream's image.
#
#   local-path-provisioner v0.0.30 (storage-provisioner): /usr/bin/local-path-provisioner, a
#     static busybox (Debian's busybox-static) with a symlink per applet as the shell its helper
#     pods run, /etc/passwd and /etc/group, /tmp; ENV PATH, CMD ["local-path-provisioner"]
#     (upstream: alpine, package/Dockerfile).
#   metrics-server v0.8.0 (metrics-server): /metrics-server, /etc/passwd and /etc/group
#     (nobody), /tmp; USER 65534, ENTRYPOINT ["/metrics-server"] (upstream: distroless/static,
#     Dockerfile), stamped with k8s.io/client-go/pkg/version as its Makefile does.
#   registry 3.0.0 (registry: distribution v3.0.0's cmd/registry): /bin/registry, the docker
#     library image's /etc/distribution/config.yml, /var/lib/registry; ENTRYPOINT ["registry"],
#     CMD ["serve", "/etc/distribution/config.yml"] (what the library image's entrypoint.sh
#     runs), stamped with version.version as upstream's Dockerfile does.
#   traefik v3.6.12 (ingress: Ingress through its ingress-nginx provider, and Gateway API):
#     /usr/local/bin/traefik (as the docker library image has it), /etc/passwd and /etc/group,
#     /tmp; ENTRYPOINT ["traefik"], EXPOSE 80, stamped with pkg/version.Version, Codename and
#     BuildDate as its Makefile does. The web UI's assets are not built (the dashboard is off).
#
# Usage: hack/build-addon-images.sh [--engine docker|podman] [--addon NAME]... [--force]
#
# Loads localhost/minik-addons/<name>:<version> into the engine's image store for each addon
# (default: all of the above); the last lines on stdout are those image names, one per addon
# (progress and timings go to stderr).
#
# Cache (outside the checkout; --force rebuilds):
#   ${XDG_CACHE_HOME:-$HOME/.cache}/minik/addon-images/<name>-<version>-<script hash>/
#     <name>  rootfs.tar  rootfs.tar.sha256  complete
# When complete, the Go build is skipped and the image is only imported when the engine does not
# already hold it with that rootfs. Go's module and build caches are the defaults.
#
# Env: ENGINE=docker|podman (default docker; --engine wins), BUSYBOX=<path of a static busybox>.
set -euo pipefail

ALL_ADDONS=(local-path-provisioner metrics-server registry traefik)
ADDONS=()
ENGINE="${ENGINE:-docker}"
FORCE=0
# The applets local-path's helper pods and manifests rely on (all of busybox's are linked).
REQUIRED_APPLETS=(sh mkdir rm rmdir chmod chown ls cat echo test '[' sleep cp mv ln touch true false)

# Sets what differs per addon: NAME MODULE VERSION (the module's) PACKAGE (what `go build`
# builds) LAYOUT (busybox | static | registry), TAG (the pinned image's tag) and IMAGE.
addon_vars() { # name
  TAG=""
  case "$1" in
    local-path-provisioner)
      NAME=local-path-provisioner MODULE=github.com/rancher/local-path-provisioner VERSION=v0.0.30
      PACKAGE="$MODULE" LAYOUT=busybox ;;
    metrics-server)
      NAME=metrics-server MODULE=sigs.k8s.io/metrics-server VERSION=v0.8.0
      PACKAGE="$MODULE/cmd/metrics-server" LAYOUT=static ;;
    registry)
      NAME=registry MODULE=github.com/distribution/distribution/v3 VERSION=v3.0.0 TAG=3.0.0
      PACKAGE="$MODULE/cmd/registry" LAYOUT=registry ;;
    traefik)
      NAME=traefik MODULE=github.com/traefik/traefik/v3 VERSION=v3.6.12
      PACKAGE="$MODULE/cmd/traefik" LAYOUT=traefik ;;
    *) die "unknown addon image '$1' (known: ${ALL_ADDONS[*]})" ;;
  esac
  IMAGE="localhost/minik-addons/$NAME:${TAG:-$VERSION}"
}

# The docker library image's /etc/distribution/config.yml (registry:3.0.0).
REGISTRY_CONFIG='version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3'


log() { printf 'build-addon-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) shift; [[ $# -gt 0 ]] || die "--engine needs a value"; ENGINE="$1" ;;
    --engine=*) ENGINE="${1#--engine=}" ;;
    --addon) shift; [[ $# -gt 0 ]] || die "--addon needs a value"; ADDONS+=("$1") ;;
    --addon=*) ADDONS+=("${1#--addon=}") ;;
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
case "$ENGINE" in
  docker|podman) ;;
  *) die "--engine must be docker or podman, got '$ENGINE'" ;;
esac
command -v "$ENGINE" >/dev/null 2>&1 || die "'$ENGINE' not found in PATH"
((${#ADDONS[@]})) || ADDONS=("${ALL_ADDONS[@]}")
for a in "${ADDONS[@]}"; do addon_vars "$a"; done

# Time in milliseconds, and "12.3s" for a duration since a start time.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $(( d / 1000 )) $(( d % 1000 / 100 )); }
T_TOTAL="$(now_ms)"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SELF_HASH="$(sha256sum "$SELF" | cut -c1-12)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/minik/addon-images"
OUT="" PARTIAL="" TMP=""
cleanup() {
  [[ -n "$TMP" ]] && rm -rf "$TMP"
  [[ -n "$PARTIAL" ]] && rm -rf "$PARTIAL"
  return 0
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
  case "$NAME" in
    local-path-provisioner)
      # Upstream stamps main.VERSION with the git tag (scripts/build: LINKFLAGS="-X main.VERSION=$VERSION").
      if grep -q -- '-X main.VERSION=' "$dir/scripts/build" 2>/dev/null && grep -qE '^\s*VERSION\s*=' "$dir/main.go"; then
        ldflags+=" -X main.VERSION=$VERSION"
      else
        log "warning: upstream's build no longer stamps main.VERSION; building unstamped"
      fi ;;
    metrics-server)
      # Makefile: PKG:=k8s.io/client-go/pkg, -X $(PKG)/version.gitVersion=$(GIT_TAG) ... buildDate.
      local pkg=k8s.io/client-go/pkg/version
      if grep -q "PKG:=k8s.io/client-go/pkg" "$dir/Makefile" 2>/dev/null; then
        ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitCommit=$VERSION -X $pkg.gitTreeState=clean"
        ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
      else
        log "warning: upstream's Makefile no longer stamps $pkg; building unstamped"
      fi ;;
    registry)
      # Dockerfile: -X ${PKG}/version.version=${VERSION#v} ... version.revision ... version.mainpkg.
      ldflags+=" -X $MODULE/version.version=${VERSION#v} -X $MODULE/version.revision=$VERSION"
      ldflags+=" -X $MODULE/version.mainpkg=$MODULE" ;;
    traefik)
      # Makefile: -X .../pkg/version.Version=$(VERSION) ...Codename=$(CODENAME) ...BuildDate=$(DATE).
      local codename
      codename="$(sed -n 's/^CODENAME ?= *//p' "$dir/Makefile" 2>/dev/null)"
      ldflags+=" -X $MODULE/pkg/version.Version=$VERSION -X $MODULE/pkg/version.Codename=${codename:-unknown}"
      ldflags+=" -X $MODULE/pkg/version.BuildDate=1970-01-01T00:00:00Z" ;;
  esac

  if ! grep -qE '^\s*(replace|exclude)\b' "$gomod"; then
    log "go install $PACKAGE@$VERSION (CGO_ENABLED=0)"
    (cd "$TMP" && GOBIN="$dest" go install -trimpath -ldflags "$ldflags" "$PACKAGE@$VERSION") ||
      die "go install $PACKAGE@$VERSION failed"
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
    (cd "$mod" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" go build -trimpath -ldflags "$ldflags" -o "$dest/$NAME" "$PACKAGE") ||
      die "go build of $MODULE@$VERSION in a throwaway module failed (go.mod: $mod/go.mod)"
  fi
  [[ -x "$dest/$NAME" ]] || die "no $NAME binary was built"
  is_static "$dest/$NAME" || die "$dest/$NAME is not static"
  local v
  if [[ "$NAME" == traefik ]]; then
    v="$("$dest/$NAME" version 2>&1 || true)"
  else
    v="$("$dest/$NAME" --version 2>&1 || true)"
  fi
  [[ "$v" == *"$VERSION"* ]] || log "warning: '$NAME --version' says '$v', expected $VERSION"
  # Upstream's tree, for the record (what the image mirrors).
  grep -hE '^(FROM|COPY|CMD|ENTRYPOINT|USER)' "$dir/package/Dockerfile" "$dir/Dockerfile" 2>/dev/null | sed 's/^/  upstream Dockerfile: /' >&2 || true
}

# The image's root filesystem as one deterministic tarball: LAYOUT busybox (local-path: the
# binary in /usr/bin, busybox as the shell) or static (metrics-server: the binary at /).
build_rootfs() { # bindir busybox tarball
  local bin="$1" busybox="$2" tarball="$3" root="$TMP/rootfs" applet
  rm -rf "$root"
  mkdir -p "$root"/{bin,usr/bin,usr/local/bin,etc,root,tmp,var,dev,proc,sys}
  chmod 0755 "$root" "$root"/{bin,usr,usr/bin,usr/local,usr/local/bin,etc,var,dev,proc,sys}
  chmod 0700 "$root/root"
  chmod 1777 "$root/tmp"
  if [[ "$LAYOUT" == static ]]; then
    install -m 0755 "$bin/$NAME" "$root/$NAME"
  elif [[ "$LAYOUT" == traefik ]]; then
    install -m 0755 "$bin/$NAME" "$root/usr/local/bin/traefik"
  elif [[ "$LAYOUT" == registry ]]; then
    install -m 0755 "$bin/$NAME" "$root/bin/registry"
    mkdir -p "$root/etc/distribution" "$root/var/lib/registry"
    chmod 0755 "$root/etc/distribution" "$root/var/lib" "$root/var/lib/registry"
    printf '%s\n' "$REGISTRY_CONFIG" >"$root/etc/distribution/config.yml"
    chmod 0644 "$root/etc/distribution/config.yml"
  else
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
  fi
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/false' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:root' 'nobody:x:65534:' >"$root/etc/group"
  printf '%s\n' 'hosts: files dns' >"$root/etc/nsswitch.conf"
  chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf}
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf "$tarball" .
}

# One addon image (the variables of addon_vars): cache, then import.
build_one() {
  OUT="$CACHE_ROOT/$NAME-$VERSION-$SELF_HASH"
  PARTIAL="$OUT.partial.$$"
  local t WANT_LAYER HAVE_LAYERS OLD_ID NEW_LAYERS NEW_ID BB
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
    BB=""
    if [[ "$LAYOUT" == busybox ]]; then
      BB="$(find_busybox)"
      log "static busybox: $BB ($("$BB" 2>&1 | head -n1 || true))"
      log "timing: busybox $(since "$t")"
    fi

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
    # PATH, CMD, ENTRYPOINT and USER are not carried by a tarball import; set them as upstream's
    # image has them (local-path: CMD, not ENTRYPOINT, since the Deployment's `command:` and the
    # helper pods' /bin/sh replace it; metrics-server: ENTRYPOINT and USER 65534, as distroless).
    local changes=(--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin')
    if [[ "$LAYOUT" == static ]]; then
      changes+=(--change "ENTRYPOINT [\"/$NAME\"]" --change 'USER 65534')
    elif [[ "$LAYOUT" == traefik ]]; then
      changes+=(--change 'ENTRYPOINT ["traefik"]' --change 'EXPOSE 80')
    elif [[ "$LAYOUT" == registry ]]; then
      changes+=(--change 'ENTRYPOINT ["registry"]' --change 'CMD ["serve", "/etc/distribution/config.yml"]')
      changes+=(--change 'EXPOSE 5000' --change 'VOLUME ["/var/lib/registry"]')
    else
      changes+=(--change "CMD [\"$NAME\"]")
    fi
    "$ENGINE" import "${changes[@]}" "$OUT/rootfs.tar" "$IMAGE" >&2 || die "$ENGINE import failed"
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
  cleanup
  TMP="" PARTIAL=""
}

IMAGES=()
for a in "${ADDONS[@]}"; do
  addon_vars "$a"
  log "== $IMAGE"
  build_one
  IMAGES+=("$IMAGE")
done
log "timing: total $(since "$T_TOTAL")"
printf '%s\n' "${IMAGES[@]}"
