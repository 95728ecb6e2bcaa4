#!/usr/bin/env bash
# Kubernetes cluster benchmark: `minik start` to every node Ready and CoreDNS answering, split
# by step (as minik reports them), for 1 and 3 nodes; stop, start again, pause, unpause; and an
# idle 1-node cluster's CPU and memory over 60 s from its cgroup (what `docker stats` shows,
# as minikube and kind publish theirs: 3.0 % and 3.4 %).
#
# Usage: bench/kubernetes.sh [NODES...]        (default: 1 3)
# Env:   MINIK=path/to/minik (default target/release/minik, else target/debug/minik)
#        MINIK_KUBERNETES_FROM=DIR  the binaries and images (hack/build-kubernetes.sh prints it);
#                                   unset: minik downloads from dl.k8s.io
#        KUBERNETES_VERSION=vX.Y.Z  (default: VERSION in that directory, else minik's default)
#        IDLE_SECONDS=60  DRIVER=docker|podman
set -euo pipefail
cd "$(dirname "$0")/.."
DRIVER="${DRIVER:-docker}"
IDLE_SECONDS="${IDLE_SECONDS:-60}"
MINIK="${MINIK:-}"
if [[ -z "$MINIK" ]]; then
  if [[ -x target/release/minik ]]; then MINIK=target/release/minik; else MINIK=target/debug/minik; fi
fi
NODES=("$@")
[[ ${#NODES[@]} -gt 0 ]] || NODES=(1 3)
VERSION_ARGS=()
if [[ -n "${KUBERNETES_VERSION:-}" ]]; then
  VERSION_ARGS=(--kubernetes-version "$KUBERNETES_VERSION")
elif [[ -n "${MINIK_KUBERNETES_FROM:-}" && -f "$MINIK_KUBERNETES_FROM/VERSION" ]]; then
  VERSION_ARGS=(--kubernetes-version "$(cat "$MINIK_KUBERNETES_FROM/VERSION")")
fi
MINIK_HOME="$(mktemp -d)"
export MINIK_HOME
export KUBECONFIG="$MINIK_HOME/kubeconfig"
export CI=true
PROFILES=()
trap 'for p in "${PROFILES[@]}"; do "$MINIK" delete -p "$p" >/dev/null 2>&1 || true; done; rm -rf "$MINIK_HOME"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
run() { # log-file command...: runs it, fails the bench with its output on failure
  local log="$1"
  shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "failed: $*" >&2; exit 1; }
}
# The node image first, so no start below includes its build.
run "$MINIK_HOME/image.log" "$MINIK" node-image build --driver "$DRIVER" "${VERSION_ARGS[@]:---kubernetes-version=stable}"

for n in "${NODES[@]}"; do
  p="bench-k8s-$n"
  PROFILES+=("$p")
  t=$(now)
  run "$MINIK_HOME/start-$n.log" "$MINIK" start -p "$p" --driver "$DRIVER" --nodes "$n" "${VERSION_ARGS[@]}"
  total=$(elapsed "$t")
  echo "start, $n node(s), to Ready + CoreDNS: ${total}s"
  # minik's own step lines: "✓ Starting the control plane (Kubernetes v1.37.2) (12.6s)"
  sed -n 's/^[^A-Za-z]*\(.*\) (\([0-9.]*\)s)$/    \2s  \1/p' "$MINIK_HOME/start-$n.log"
  t=$(now)
  run "$MINIK_HOME/stop-$n.log" "$MINIK" stop -p "$p"
  echo "stop, $n node(s): $(elapsed "$t")s"
  t=$(now)
  run "$MINIK_HOME/restart-$n.log" "$MINIK" start -p "$p"
  echo "start again (no kubeadm), $n node(s), to Ready: $(elapsed "$t")s"
  t=$(now)
  run "$MINIK_HOME/pause-$n.log" "$MINIK" pause -p "$p"
  echo "pause: $(elapsed "$t")s"
  t=$(now)
  run "$MINIK_HOME/unpause-$n.log" "$MINIK" unpause -p "$p"
  echo "unpause: $(elapsed "$t")s"

  if [[ "$n" == 1 && "$DRIVER" == docker && "$IDLE_SECONDS" -gt 0 ]]; then
    sleep 30 # let the restart settle (image GC, leader elections)
    # Read from the node container's cgroup (`docker stats` reports 0 B and 0 % for minik's
    # nodes on this cgroup v1 host): CPU time over the window, memory as docker stats counts
    # it (usage minus inactive file cache), sampled every 5 s.
    id="$(docker inspect -f '{{.Id}}' "$p")"
    if [[ -d "/sys/fs/cgroup/memory/docker/$id" ]]; then
      mem_now() { local u i; u=$(cat "/sys/fs/cgroup/memory/docker/$id/memory.usage_in_bytes")
        i=$(awk '$1 == "total_inactive_file" { print $2 }' "/sys/fs/cgroup/memory/docker/$id/memory.stat")
        echo $((u - i)); }
      cpu_ns() { cat "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage"; }
    else
      cg="/sys/fs/cgroup/system.slice/docker-$id.scope"
      [[ -d "$cg" ]] || cg="/sys/fs/cgroup/docker/$id"
      mem_now() { local u i; u=$(cat "$cg/memory.current")
        i=$(awk '$1 == "inactive_file" { print $2 }' "$cg/memory.stat"); echo $((u - i)); }
      cpu_ns() { awk '$1 == "usage_usec" { print $2 * 1000 }' "$cg/cpu.stat"; }
    fi
    c0=$(cpu_ns) t0=$(now) mem_sum=0 samples=0
    for _ in $(seq $((IDLE_SECONDS / 5))); do
      sleep 5
      mem_sum=$((mem_sum + $(mem_now))) samples=$((samples + 1))
    done
    awk -v c0="$c0" -v c1="$(cpu_ns)" -v t0="$t0" -v t1="$(now)" -v m="$mem_sum" -v n="$samples" 'BEGIN {
      printf "idle 1-node cluster over %.0fs: CPU %.1f %% of one core, memory %.0f MiB (mean of %d samples)\n",
        t1 - t0, (c1 - c0) / ((t1 - t0) * 1e9) * 100, m / n / 1048576, n }'
  fi
  "$MINIK" delete -p "$p" >/dev/null 2>&1
done
