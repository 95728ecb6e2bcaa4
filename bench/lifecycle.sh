#!/usr/bin/env bash
# Node lifecycle benchmark: times minik's create / stop / start / pause / unpause / delete for
# 1 and 3 nodes (--no-kubernetes) and compares node boot with the floor the engine allows
# (a bare `docker run` of the same node image, polled until containerd is active).
#
# Usage: bench/lifecycle.sh [ITERATIONS]   (default 3; prints medians in seconds)
# Env:   MINIK=path/to/minik (default target/release/minik, else target/debug/minik)
#        DRIVER=docker|podman (the engine CLI of the same name is used for the floor)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-3}"
DRIVER="${DRIVER:-docker}"
MINIK="${MINIK:-}"
if [[ -z "$MINIK" ]]; then
  if [[ -x target/release/minik ]]; then MINIK=target/release/minik; else MINIK=target/debug/minik; fi
fi
export MINIK_HOME="$(mktemp -d)"
export CI=true
# Only this script's profiles: `delete --all` would also remove every other minik profile on
# every engine (other MINIK_HOMEs, tests running alongside).
trap 'for p in bench-1 bench-3 bench-k8s; do "$MINIK" delete -p $p >/dev/null 2>&1 || true; done; rm -rf "$MINIK_HOME"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
timed() { local t; t=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; elapsed "$t"; }

IMAGE=$("$MINIK" node-image build --driver "$DRIVER" -q | tail -n 1)

# The floor: the same image started by hand with the options minik uses on this engine here.
# docker: the capability fallback (--privileged is refused on these VMs). podman: --privileged
# (rootful podman grants it from its own bounding set) plus explicit ulimits within the hard
# limits, as the podman driver sets them.
if [[ "$DRIVER" == podman ]]; then
  nofile="$(ulimit -Hn)" nproc="$(ulimit -Hu)"
  [[ "$nofile" == unlimited || "$nofile" -gt 1048576 ]] && nofile=1048576
  [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
  FLOOR_OPTS=(--privileged --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" -e container=podman)
else
  FLOOR_OPTS=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt systempaths=unconfined --cgroupns=private)
fi
floor() {
  local t name=minik-bench-floor
  t=$(now)
  $DRIVER run -d --name $name --hostname $name "${FLOOR_OPTS[@]}" \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /run --tmpfs /tmp -v /var \
    --stop-signal SIGRTMIN+3 "$IMAGE" >/dev/null
  until [[ "$($DRIVER exec $name systemctl is-active containerd 2>/dev/null)" == active ]]; do sleep 0.05; done
  elapsed "$t"
  $DRIVER rm -f -v $name >/dev/null
}

declare -A R
for nodes in 1 3; do
  for op in create stop start pause unpause delete; do R[$nodes-$op]=""; done
  for i in $(seq 1 "$N"); do
    p="bench-$nodes"
    R[$nodes-create]+="$(timed "$MINIK" start -p $p --driver "$DRIVER" --no-kubernetes --nodes $nodes)"$'\n'
    R[$nodes-stop]+="$(timed "$MINIK" stop -p $p)"$'\n'
    R[$nodes-start]+="$(timed "$MINIK" start -p $p)"$'\n'
    R[$nodes-pause]+="$(timed "$MINIK" pause -p $p)"$'\n'
    R[$nodes-unpause]+="$(timed "$MINIK" unpause -p $p)"$'\n'
    R[$nodes-delete]+="$(timed "$MINIK" delete -p $p)"$'\n'
  done
done
F=""
for i in $(seq 1 "$N"); do F+="$(floor)"$'\n'; done
floor_med=$(printf '%s' "$F" | median)

echo "driver: $DRIVER   iterations: $N   image: $IMAGE"
echo "floor (bare run -> containerd active, 1 node): ${floor_med}s"
printf '%-8s %8s %8s %8s %8s %8s %8s %14s\n' nodes create stop start pause unpause delete "create/floor"
for nodes in 1 3; do
  c=$(printf '%s' "${R[$nodes-create]}" | median)
  printf '%-8s %8s %8s %8s %8s %8s %8s %14s\n' "$nodes" "$c" \
    "$(printf '%s' "${R[$nodes-stop]}" | median)" "$(printf '%s' "${R[$nodes-start]}" | median)" \
    "$(printf '%s' "${R[$nodes-pause]}" | median)" "$(printf '%s' "${R[$nodes-unpause]}" | median)" \
    "$(printf '%s' "${R[$nodes-delete]}" | median)" "$(awk -v a="$c" -v b="$floor_med" 'BEGIN { printf "%.2fx", a / b }')"
done

# Kubernetes: warm start to DNS-ready (`start` waits for every node Ready and a ready CoreDNS
# endpoint) and restart, beside k3d's 19.9 s total in minikube's time-to-k8s. Needs real
# Kubernetes binaries: MINIK_KUBERNETES_FROM=DIR (docs/kubernetes.md); skipped with a line
# saying so otherwise.
if [[ -n "${MINIK_KUBERNETES_FROM:-}" ]]; then
  KV="$(cat "$MINIK_KUBERNETES_FROM/VERSION" 2>/dev/null || echo stable)"
  "$MINIK" node-image build --driver "$DRIVER" --kubernetes-version "$KV" -q >/dev/null
  K_CREATE="" K_RESTART=""
  for i in $(seq 1 "$N"); do
    K_CREATE+="$(timed "$MINIK" start -p bench-k8s --driver "$DRIVER" --kubernetes-version "$KV" --keep-context)"$'\n'
    "$MINIK" stop -p bench-k8s >/dev/null 2>&1
    K_RESTART+="$(timed "$MINIK" start -p bench-k8s --keep-context)"$'\n'
    "$MINIK" delete -p bench-k8s >/dev/null 2>&1
  done
  kc=$(printf '%s' "$K_CREATE" | median)
  kr=$(printf '%s' "$K_RESTART" | median)
  echo "kubernetes $KV: start to DNS-ready ${kc}s ($(awk -v a="$kc" 'BEGIN { printf "%.2fx", a / 19.9 }') of k3d's 19.9s; goal <= 15s), restart ${kr}s (goal <= 5s)"
else
  echo "kubernetes: not measured (set MINIK_KUBERNETES_FROM=DIR with kubeadm, kubelet, kubectl)"
fi
