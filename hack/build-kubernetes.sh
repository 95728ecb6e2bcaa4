#!/usr/bin/env bash
# Build a `--kubernetes-from` directory from source: every binary and image a kubeadm cluster
# of one Kubernetes version runs, built here from the Go module proxy (no registry, no
# dl.k8s.io, no GitHub needed).
#
# Usage: hack/build-kubernetes.sh [--version vX.Y.Z] [--engine docker|podman] [--print-dir]
#
# Produces (layout: docs/kubernetes.md, "--kubernetes-from"):
#   kubeadm kubelet kubectl            from k8s.io/kubernetes, version-stamped as Kubernetes'
#                                      own build does (an unstamped kubeadm says v0.0.0)
#   crictl                             from sigs.k8s.io/cri-tools
#   containerd containerd-shim-runc-v2 ctr
#                                      from github.com/containerd/containerd/v2 (Kubernetes
#                                      1.36+ needs containerd 2; Debian ships 1.7)
#   images/*.tar                       the images `kubeadm config images list` names, under those
#                                      exact names: kube-apiserver, kube-controller-manager,
#                                      kube-scheduler, kube-proxy (Debian + iptables/nftables/
#                                      conntrack), etcd, CoreDNS, pause (static C), all static
#                                      (CGO_ENABLED=0) on a minimal base made here
#   VERSION SHA256SUMS BUILDINFO
#
# The result is cached outside the checkout in
#   ${MINIK_K8S_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minik/kubernetes-from-source}/<version>-<builder hash>/
# and reused when complete; Go's module and build caches are reused across versions. The last
# line on stdout is that directory (logs and timings go to stderr).
#
# Env: ENGINE (docker), BASE_IMAGE (debian:trixie-slim, for kube-proxy; tests/make-base-image.sh
#      makes it), CONTAINERD_VERSION, CRICTL_VERSION, GO_BUILD_P (go build -p).
set -euo pipefail

VERSION="${KUBERNETES_VERSION:-v1.37.2}"
ENGINE="${ENGINE:-docker}"
BASE_IMAGE="${BASE_IMAGE:-debian:trixie-slim}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.3.7}"
CRICTL_VERSION="${CRICTL_VERSION:-}"
PRINT_DIR_ONLY=0

log() { printf 'build-kubernetes: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) shift; VERSION="${1:?--version needs a value}" ;;
    --version=*) VERSION="${1#--version=}" ;;
    --engine) shift; ENGINE="${1:?--engine needs a value}" ;;
    --engine=*) ENGINE="${1#--engine=}" ;;
    --print-dir) PRINT_DIR_ONLY=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ "$VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "version must look like v1.37.2, got '$VERSION'"
MINOR="${BASH_REMATCH[1]}"
PATCH="${BASH_REMATCH[2]}"
STAGING_VERSION="v0.${MINOR}.${PATCH}"
# crictl follows Kubernetes' minor; take the newest the proxy serves for it unless pinned.
ARCH="$(go env GOARCH)"

# The builder's own hash keys the cache: a change to this script rebuilds.
SELF_HASH="$(sha256sum "$0" | cut -c1-12)"
CACHE_ROOT="${MINIK_K8S_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minik/kubernetes-from-source}"
OUT="$CACHE_ROOT/${VERSION}-${SELF_HASH}"
if [[ "$PRINT_DIR_ONLY" == 1 ]]; then echo "$OUT"; exit 0; fi
if [[ -f "$OUT/.complete" ]]; then
  log "reusing $OUT"
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || die "go not found (Go 1.26 or newer is needed)"
command -v "$ENGINE" >/dev/null || die "$ENGINE not found (images are built with it)"
command -v gcc >/dev/null || die "gcc not found (pause is a C program)"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=mod" CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH"
GO_BUILD_P="${GO_BUILD_P:-$(nproc)}"

WORK="$CACHE_ROOT/work/${VERSION}"
TMP_OUT="$OUT.partial.$$"
rm -rf "$TMP_OUT"
mkdir -p "$WORK" "$TMP_OUT/images"
trap 'rm -rf "$TMP_OUT"' EXIT
TIMINGS=()
T_ALL=$(date +%s)
timed() { # name command...
  local name="$1" t0 t1
  shift
  t0=$(date +%s)
  log "[$name] start"
  "$@"
  t1=$(date +%s)
  TIMINGS+=("$name $((t1 - t0))s")
  log "[$name] done in $((t1 - t0))s"
}

# A module's go.mod file (downloaded through the proxy).
gomod_of() { go mod download -json "$1@$2" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p'; }

# A throwaway module that builds packages of dependency MODULE@VERSION: `replace` lines of the
# dependency (ignored by Go for a dependency) are carried over, the ones pointing into its own
# tree (`=> ./staging/src/k8s.io/api`, `=> ../api`) become that module at LOCALVERSION.
make_module() { # dir module version localversion pkgs...
  local dir="$1" mod="$2" ver="$3" localver="$4"
  shift 4
  local depmod
  depmod="$(gomod_of "$mod" "$ver")"
  [[ -f "$depmod" ]] || die "the proxy does not serve $mod@$ver"
  rm -rf "$dir"
  mkdir -p "$dir"
  {
    echo "module minik.local/build/$(basename "$dir")"
    echo
    echo "go $(awk '$1 == "go" { print $2; exit }' "$depmod")"
    echo
    echo "require $mod $ver"
    echo
    echo "replace ("
    awk -v lv="$localver" '
      BEGIN { major = lv; sub(/^v/, "", major); sub(/\..*/, "", major); major += 0 }
      /^replace \($/ { inblock = 1; next }
      inblock && /^\)$/ { inblock = 0; next }
      /^replace / { sub(/^replace /, ""); line = $0 }
      inblock { line = $0 }
      line != "" {
        n = split(line, f, " ")
        # f[1] [ver] => target [ver]
        for (i = 1; i <= n; i++) if (f[i] == "=>") arrow = i
        target = f[arrow + 1]
        if (target !~ /^\.\.?\//) printf "\t%s\n", line
        # a module of the tree whose path cannot carry LOCALVERSION (go.etcd.io/etcd at v3.x:
        # no /v3 suffix) is none the build needs: leave it out
        else if (major < 2 || f[1] ~ ("/v" major "$")) printf "\t%s => %s %s\n", f[1], f[1], lv
        line = ""
      }' "$depmod"
    echo ")"
  } >"$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    local p
    for p in "$@"; do echo "	_ \"$p\""; done
    echo ")"
  } >"$dir/tools.go"
  (cd "$dir" && go mod tidy >&2) || die "go mod tidy failed for $mod@$ver in $dir"
}

go_build() { # dir ldflags outdir pkgs...
  local dir="$1" ldflags="$2" outdir="$3"
  shift 3
  (cd "$dir" && go build -p "$GO_BUILD_P" -trimpath -ldflags "-s -w $ldflags" -o "$outdir/" "$@")
}

BIN="$TMP_OUT/bin.d"
mkdir -p "$BIN"
BUILD_DATE="$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/^\t"Info": "\(.*\)",$/\1/p' | xargs cat |
  sed -n 's/.*"Time":"\([^"]*\)".*/\1/p')"
[[ -n "$BUILD_DATE" ]] || die "the proxy does not serve k8s.io/kubernetes@$VERSION"

# 1. Kubernetes.
K8S_PKGS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
k8s_module() { make_module "$WORK/kubernetes" k8s.io/kubernetes "$VERSION" "$STAGING_VERSION" "${K8S_PKGS[@]/#/k8s.io/kubernetes/cmd/}"; }
k8s_build() {
  local v ld="" pkg
  # gitCommit: a module from the proxy carries no commit; say where the source came from.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for v in "gitVersion=$VERSION" "gitMajor=1" "gitMinor=$MINOR" "gitCommit=go-module-k8s.io/kubernetes@$VERSION" \
      "gitTreeState=clean" "buildDate=$BUILD_DATE"; do
      ld+=" -X $pkg.$v"
    done
  done
  go_build "$WORK/kubernetes" "$ld" "$BIN" "${K8S_PKGS[@]/#/k8s.io/kubernetes/cmd/}"
}
timed "kubernetes: module" k8s_module
timed "kubernetes: build (${K8S_PKGS[*]})" k8s_build
"$BIN/kubeadm" version -o short | grep -qx "$VERSION" || die "kubeadm reports $("$BIN/kubeadm" version -o short), not $VERSION"

# The images this kubeadm names (registry.k8s.io/kube-apiserver:v1.37.2, .../etcd:3.7.0-0, ...).
mapfile -t IMAGES < <("$BIN/kubeadm" config images list --kubernetes-version "$VERSION" 2>/dev/null)
((${#IMAGES[@]} >= 7)) || die "kubeadm config images list gave ${#IMAGES[@]} images: ${IMAGES[*]}"
image_named() { local i; for i in "${IMAGES[@]}"; do [[ "$i" == */"$1":* ]] && { echo "$i"; return; }; done; die "no $1 image in: ${IMAGES[*]}"; }
ETCD_IMAGE="$(image_named etcd)"
COREDNS_IMAGE="$(image_named coredns)"
PAUSE_IMAGE="$(image_named pause)"
ETCD_VERSION="v${ETCD_IMAGE##*:}"
ETCD_VERSION="${ETCD_VERSION%-*}"
COREDNS_VERSION="${COREDNS_IMAGE##*:}"
PAUSE_VERSION="${PAUSE_IMAGE##*:}"
log "kubeadm $VERSION names etcd $ETCD_VERSION, CoreDNS $COREDNS_VERSION, pause $PAUSE_VERSION"

# 2. etcd (its server module replaces its sibling modules by path: same tag for each).
etcd_all() {
  make_module "$WORK/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION" go.etcd.io/etcd/server/v3 &&
    go_build "$WORK/etcd" "-X go.etcd.io/etcd/api/v3/version.GitSHA=go-module" "$BIN/etcd.d" go.etcd.io/etcd/server/v3 &&
    mv "$BIN"/etcd.d/* "$BIN/etcd" && rmdir "$BIN/etcd.d"
}
timed "etcd $ETCD_VERSION" etcd_all

# 3. CoreDNS.
coredns_all() {
  make_module "$WORK/coredns" github.com/coredns/coredns "$COREDNS_VERSION" "$COREDNS_VERSION" github.com/coredns/coredns &&
    go_build "$WORK/coredns" "-X github.com/coredns/coredns/coremain.GitCommit=go-module" "$BIN" github.com/coredns/coredns
}
timed "coredns $COREDNS_VERSION" coredns_all

# 4. crictl: the newest cri-tools release of this minor the proxy serves, else the newest.
if [[ -z "$CRICTL_VERSION" ]]; then
  CRICTL_VERSION="$(go list -m -versions sigs.k8s.io/cri-tools | tr ' ' '\n' | grep -E "^v1\.${MINOR}\.[0-9]+$" | sort -V | tail -n1 || true)"
  [[ -n "$CRICTL_VERSION" ]] || CRICTL_VERSION="$(go list -m -versions sigs.k8s.io/cri-tools | tr ' ' '\n' | grep -E '^v1\.[0-9]+\.[0-9]+$' | sort -V | tail -n1)"
fi
crictl_all() {
  make_module "$WORK/cri-tools" sigs.k8s.io/cri-tools "$CRICTL_VERSION" "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl &&
    go_build "$WORK/cri-tools" "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" "$BIN" sigs.k8s.io/cri-tools/cmd/crictl
}
timed "crictl $CRICTL_VERSION" crictl_all

# 5. containerd 2 (static, as upstream's containerd-static release: no btrfs/devmapper).
containerd_all() {
  make_module "$WORK/containerd" github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr &&
    (cd "$WORK/containerd" && go build -p "$GO_BUILD_P" -trimpath -tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2 -X github.com/containerd/containerd/v2/version.Revision=go-module" \
      -o "$BIN/" github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
      github.com/containerd/containerd/v2/cmd/ctr)
}
timed "containerd $CONTAINERD_VERSION" containerd_all

# 6. pause: the C program in Kubernetes' tree, static.
K8S_DIR="$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
timed "pause $PAUSE_VERSION" gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_VERSION" -o "$BIN/pause" "$K8S_DIR/build/pause/linux/pause.c"
strip "$BIN/pause"

# 7. Images, under kubeadm's names. Static ones: one layer with the binary, /etc/passwd and /tmp.
CTX="$TMP_OUT/ctx"
static_image() { # image binary [user]
  local image="$1" binary="$2" user="${3:-0:0}"
  rm -rf "$CTX"
  mkdir -p "$CTX/root/usr/local/bin" "$CTX/root/etc" "$CTX/root/tmp"
  chmod 1777 "$CTX/root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$CTX/root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n' >"$CTX/root/etc/group"
  printf 'hosts: files dns\n' >"$CTX/root/etc/nsswitch.conf"
  cp "$BIN/$binary" "$CTX/root/usr/local/bin/$binary"
  local entry="/usr/local/bin/$binary"
  cat >"$CTX/Dockerfile" <<EOF
FROM scratch
COPY root/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER $user
ENTRYPOINT ["$entry"]
LABEL io.minik.built-from-source="$binary"
EOF
  "$ENGINE" build -q -t "$image" "$CTX" >/dev/null
}
save_image() { # image file
  rm -f "$TMP_OUT/images/$2.tar"
  "$ENGINE" save -o "$TMP_OUT/images/$2.tar" "$1"
}
images_all() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    static_image "$(image_named "$c")" "$c"
    save_image "$(image_named "$c")" "$c"
  done
  static_image "$ETCD_IMAGE" etcd && save_image "$ETCD_IMAGE" etcd
  static_image "$COREDNS_IMAGE" coredns 65532:65532 && save_image "$COREDNS_IMAGE" coredns
  # pause: upstream's image runs it as 65535.
  rm -rf "$CTX" && mkdir -p "$CTX" && cp "$BIN/pause" "$CTX/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$CTX/Dockerfile"
  "$ENGINE" build -q -t "$PAUSE_IMAGE" "$CTX" >/dev/null && save_image "$PAUSE_IMAGE" pause
  # kube-proxy: iptables (nft and legacy), nftables, conntrack, ipset, as upstream's image has.
  "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "base image $BASE_IMAGE missing (bash tests/make-base-image.sh)"
  rm -rf "$CTX" && mkdir -p "$CTX" && cp "$BIN/kube-proxy" "$CTX/kube-proxy"
  cat >"$CTX/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN set -eux; export DEBIAN_FRONTEND=noninteractive; apt-get update; \
    apt-get install -y --no-install-recommends iptables nftables conntrack ipset kmod; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
EOF
  "$ENGINE" build -q -t "$(image_named kube-proxy)" "$CTX" >/dev/null && save_image "$(image_named kube-proxy)" kube-proxy
}
timed "images (${#IMAGES[@]})" images_all

# 8. The layout, checksums, version, provenance.
for b in kubeadm kubelet kubectl crictl containerd containerd-shim-runc-v2 ctr; do
  install -m 0755 "$BIN/$b" "$TMP_OUT/$b"
done
rm -rf "$BIN" "$CTX"
echo "$VERSION" >"$TMP_OUT/VERSION"
(cd "$TMP_OUT" && sha256sum kubeadm kubelet kubectl crictl containerd containerd-shim-runc-v2 ctr images/*.tar >SHA256SUMS)
TIMINGS+=("total $(($(date +%s) - T_ALL))s")
{
  echo "kubernetes $VERSION (k8s.io/kubernetes@$VERSION, staging modules $STAGING_VERSION, buildDate $BUILD_DATE)"
  echo "etcd $ETCD_VERSION  coredns $COREDNS_VERSION  pause $PAUSE_VERSION  crictl $CRICTL_VERSION  containerd $CONTAINERD_VERSION"
  echo "go $(go env GOVERSION)  builder $SELF_HASH  built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'images:'; printf ' %s' "${IMAGES[@]}"; echo
  printf 'timings:'; printf ' [%s]' "${TIMINGS[@]}"; echo
} >"$TMP_OUT/BUILDINFO"
touch "$TMP_OUT/.complete"
rm -rf "$OUT"
mv "$TMP_OUT" "$OUT"
trap - EXIT
log "timings: ${TIMINGS[*]}"
echo "$OUT"
