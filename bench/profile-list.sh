#!/usr/bin/env bash
# `minik profile list` latency with COUNT profiles (default 10, --no-kubernetes, one node each)
# on one engine, beside the calls the old implementation paid: podman's `/version` (asked even
# when no profile used podman) and `docker version`. Prints the median and the best of RUNS
# runs in milliseconds, and the ratio to the 150 ms goal.
#
# Usage: bench/profile-list.sh [COUNT] [RUNS]   (defaults 10 and 15)
# Env:   MINIK=path/to/minik (default target/release/minik, else target/debug/minik)
#        DRIVER=docker|podman (default docker)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-10}"
RUNS="${2:-15}"
DRIVER="${DRIVER:-docker}"
MINIK="${MINIK:-}"
if [[ -z "$MINIK" ]]; then
  if [[ -x target/release/minik ]]; then MINIK=target/release/minik; else MINIK=target/debug/minik; fi
fi
export MINIK_HOME="$(mktemp -d)"
export CI=true
cleanup() {
  for i in $(seq 1 "$COUNT"); do "$MINIK" delete -p "bench-pl-$i" >/dev/null 2>&1 || true; done
  rm -rf "$MINIK_HOME"
}
trap cleanup EXIT

echo "creating $COUNT profiles ($DRIVER, --no-kubernetes)"
for i in $(seq 1 "$COUNT"); do
  "$MINIK" start -p "bench-pl-$i" --driver "$DRIVER" --no-kubernetes >/dev/null 2>&1 &
done
wait
"$MINIK" profile list

ms() { python3 -c 'import sys,time,subprocess
t=time.perf_counter(); subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL); print(round((time.perf_counter()-t)*1000))' "$@"; }
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms, best %d ms\n", a[int((NR+1)/2)], a[1]}'; }

echo "minik profile list ($COUNT profiles, $RUNS runs):"
list=$(for _ in $(seq 1 "$RUNS"); do ms "$MINIK" profile list; done | stats)
echo "  $list"
median=$(echo "$list" | sed -E 's/median ([0-9]+) ms.*/\1/')
echo "  goal 150 ms: ratio $(python3 -c "print(round($median/150,2))")"
if podman --remote --url unix:///run/podman/podman.sock version >/dev/null 2>&1; then
  echo "podman --remote version (the call minik no longer makes):"
  echo "  $(for _ in 1 2 3; do ms podman --remote --url unix:///run/podman/podman.sock version; done | stats)"
fi
echo "docker version:"
echo "  $(for _ in 1 2 3; do ms docker version; done | stats)"
