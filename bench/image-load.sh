#!/usr/bin/env bash
# Image load benchmark: `minik image load` of a ~200 MB image into a 3-node --no-kubernetes
# profile, beside kind's method scripted by hand (`kind load docker-image`: `docker save` to a
# file, then the file piped into `ctr -n k8s.io images import --all-platforms --digests
# --snapshotter=<detected>` in every node at once), plus the same without the temporary file
# (`docker save` piped into each node). Then the second load of the same image, and a load of
# the same image under a new tag.
#
# Every timed first load starts from nodes without the image (removed with `ctr images rm
# --sync`, which also frees its content), and the methods alternate so caches favour neither.
#
# Usage: bench/image-load.sh [ITERATIONS]   (default 3; prints medians in seconds)
# Env:   MINIK=path/to/minik (default target/release/minik, else target/debug/minik)
#        DRIVER=docker|podman (default docker; the engine CLI of the same name is used)
#        SIZE_MB=size of the random layer added to debian:trixie-slim (default 80 → ~200 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-3}"
DRIVER="${DRIVER:-docker}"
SIZE_MB="${SIZE_MB:-80}"
MINIK="${MINIK:-}"
if [[ -z "$MINIK" ]]; then
  if [[ -x target/release/minik ]]; then MINIK=target/release/minik; else MINIK=target/debug/minik; fi
fi
export MINIK_HOME="$(mktemp -d)"
export CI=true
P=bench-img
IMG=localhost/minik-bench/big:1
TMP="$(mktemp -d)"
trap '"$MINIK" delete -p $P >/dev/null 2>&1 || true; rm -rf "$MINIK_HOME" "$TMP"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The image: Debian plus a layer of random (incompressible) bytes.
if ! $DRIVER image inspect $IMG >/dev/null 2>&1; then
  printf 'FROM debian:trixie-slim\nRUN head -c %sM /dev/urandom > /blob && echo built > /built\nCMD ["cat", "/built"]\n' "$SIZE_MB" > "$TMP/Dockerfile"
  $DRIVER build -q -t $IMG "$TMP" >/dev/null
fi
size_mb=$($DRIVER image inspect $IMG --format '{{.Size}}' | awk '{ printf "%.0f", $1 / 1e6 }')

"$MINIK" start -p $P --driver "$DRIVER" --no-kubernetes --nodes 3 >/dev/null 2>&1
NODES=($P $P-m02 $P-m03)
snap=$($DRIVER exec ${NODES[0]} containerd config dump | sed -n 's/^ *snapshotter = "\(..*\)"/\1/p' | head -n 1)

# Removes every name of the image from every node and frees its content.
clean() {
  for n in "${NODES[@]}"; do
    $DRIVER exec $n sh -c "ctr -n k8s.io images ls -q | grep -E 'minik-bench|^sha256:' | xargs -r ctr -n k8s.io images rm --sync" >/dev/null 2>&1 || true
  done
}
kind_file() {
  $DRIVER save $IMG -o "$TMP/image.tar"
  for n in "${NODES[@]}"; do
    $DRIVER exec -i $n ctr -n k8s.io images import --all-platforms --digests --snapshotter="$snap" - < "$TMP/image.tar" >/dev/null &
  done
  wait
  rm -f "$TMP/image.tar"
}
kind_pipe() {
  for n in "${NODES[@]}"; do
    $DRIVER save $IMG | $DRIVER exec -i $n ctr -n k8s.io images import --all-platforms --digests --snapshotter="$snap" - >/dev/null &
  done
  wait
}
minik_load() { "$MINIK" image load -p $P "${1:-$IMG}" >/dev/null 2>&1; }
timed() { local t; t=$(now); "$@"; elapsed "$t"; }

declare -A R=([minik]="" [kind-file]="" [kind-pipe]="" [again]="" [retag]="")
for i in $(seq 1 "$N"); do
  clean; R[kind-file]+="$(timed kind_file)"$'\n'
  clean; R[minik]+="$(timed minik_load)"$'\n'
  R[again]+="$(timed minik_load)"$'\n'
  $DRIVER tag $IMG localhost/minik-bench/big:retag-$i
  R[retag]+="$(timed minik_load localhost/minik-bench/big:retag-$i)"$'\n'
  $DRIVER rmi localhost/minik-bench/big:retag-$i >/dev/null
  clean; R[kind-pipe]+="$(timed kind_pipe)"$'\n'
done

m() { printf '%s' "${R[$1]}" | median; }
echo "image $IMG: ${size_mb} MB, 3 nodes, $DRIVER, snapshotter $snap, median of $N, seconds"
printf '%-44s %s\n' "minik image load (first)" "$(m minik)"
printf '%-44s %s\n' "kind's method (save to file, 3 imports)" "$(m kind-file)"
printf '%-44s %s\n' "kind's method piped (3 saves, 3 imports)" "$(m kind-pipe)"
awk -v a="$(m minik)" -v b="$(m kind-file)" 'BEGIN { printf "%-44s %.2f\n", "minik / kind (file)", a / b }'
printf '%-44s %s\n' "minik image load (second, same image)" "$(m again)"
printf '%-44s %s\n' "minik image load (same image, new tag)" "$(m retag)"
