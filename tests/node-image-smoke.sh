#!/usr/bin/env bash
# Smoke test of the node image with the plain docker CLI (no minik code involved):
# boot, systemd state, containerd, journal, nested container, DNS from a pod-like network
# namespace, /var persistence over stop/start, pause/unpause, two nodes on one network.
# Cleans up every container, volume and network it creates; leaves the images.
#
# Usage: tests/node-image-smoke.sh   (env NODE_IMAGE, default localhost/minik/node:dev;
#        BUILD=1 builds it first from node-image/)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_IMAGE="${NODE_IMAGE:-localhost/minik/node:dev}"
HELLO=localhost/minik-test/hello:1
NET=minik-smoke
PREFIX=minik-smoke
pass=0 fail=0

log() { printf 'smoke: %s\n' "$*" >&2; }
ok() { pass=$((pass + 1)); log "ok   - $*"; }
bad() { fail=$((fail + 1)); log "FAIL - $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

cleanup() {
  docker rm -f -v "$PREFIX-n1" "$PREFIX-n2" >/dev/null 2>&1 || true
  docker volume rm "$PREFIX-n1-var" "$PREFIX-n2-var" >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$HERE/make-base-image.sh"
"$HERE/make-test-image.sh"
if [[ "${BUILD:-0}" == 1 ]]; then
  t=$(now)
  docker build -q -t "$NODE_IMAGE" "$HERE/../node-image" >/dev/null
  log "built $NODE_IMAGE in $(since "$t")s"
fi

# Run options: kind's recipe is --privileged --cgroupns=private (PRIVILEGED=1). --privileged
# fails on the minik development VMs (no CAP_SYS_RESOURCE in the bounding set), so by default
# use the equivalent capabilities with a private cgroup namespace (the entrypoint makes the
# cgroup mounts writable). CGROUPNS=host tests the older fallback with the host's hierarchy.
node_opts=(--detach --tty --network "$NET" --tmpfs /run --tmpfs /tmp
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --stop-signal SIGRTMIN+3)
if [[ "${PRIVILEGED:-0}" == 1 ]]; then
  node_opts+=(--privileged --cgroupns=private)
elif [[ "${CGROUPNS:-private}" == host ]]; then
  node_opts+=(--cap-add=ALL --cap-drop=SYS_RESOURCE --cgroupns=host
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw)
else
  node_opts+=(--cap-add=ALL --cap-drop=SYS_RESOURCE --cgroupns=private)
fi
[[ -d /lib/modules ]] && node_opts+=(-v /lib/modules:/lib/modules:ro)

cleanup
docker network create "$NET" >/dev/null

start_node() { # name
  docker volume create "$PREFIX-$1-var" >/dev/null
  docker run "${node_opts[@]}" --name "$PREFIX-$1" --hostname "$1" \
    -v "$PREFIX-$1-var:/var" "$NODE_IMAGE" >/dev/null
}

wait_containerd() { # container -> seconds or fails after 60 s
  local t; t=$(now)
  for _ in $(seq 1 600); do
    [[ "$(docker exec "$1" systemctl is-active containerd 2>/dev/null)" == active ]] && { since "$t"; return 0; }
    sleep 0.1
  done
  return 1
}

n1="$PREFIX-n1"
t=$(now)
start_node n1
wait_containerd "$n1" >/dev/null && ok "containerd active $(since "$t")s after docker run" || bad "containerd never active"
state="$(docker exec "$n1" systemctl is-system-running --wait 2>&1 || true)"
[[ "$state" == running ]] && ok "systemctl is-system-running: $state ($(since "$t")s)" ||
  { bad "systemctl is-system-running: $state"; docker exec "$n1" systemctl --failed --no-legend >&2 || true; }
[[ "$(docker exec "$n1" journalctl --no-pager -q -u containerd | wc -l)" -gt 0 ]] && ok "journal has containerd entries" || bad "journal empty"
docker logs "$n1" 2>&1 | grep -q 'Reached target.*Multi-User System' && ok "docker logs show 'Reached target ... Multi-User System'" || bad "no multi-user line in docker logs"

docker save "$HELLO" | docker exec -i "$n1" ctr -n k8s.io images import - >/dev/null
# ctr's default cgroup is /k8s.io/<id> at the hierarchy root: with --cgroupns=host that is the
# host's root, so nest it below the node's own cgroup instead ("/" in a private cgroupns).
node_cgroup() { docker exec "$1" awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3; exit }' /proc/1/cgroup; }
out="$(docker exec "$n1" ctr -n k8s.io run --rm --cgroup "$(node_cgroup "$n1" | sed 's#/$##')/ctr-t1" "$HELLO" t1 2>&1)"
[[ "$out" == "hello from minik" ]] && ok "nested container: $out" || bad "nested container printed: $out"

# DNS as a pod sees it: a network namespace behind a veth, resolver = the node's resolv.conf.
pod_dns_check() { # container label
  local dns_ip ans
  dns_ip="$(docker exec "$1" awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf)"
  docker exec "$1" sh -euc "
    ip netns del pod1 2>/dev/null || true
    ip netns add pod1
    ip link add veth-pod1 type veth peer name eth0 netns pod1
    ip addr add 10.250.0.1/30 dev veth-pod1; ip link set veth-pod1 up
    ip -n pod1 addr add 10.250.0.2/30 dev eth0; ip -n pod1 link set eth0 up; ip -n pod1 link set lo up
    ip -n pod1 route add default via 10.250.0.1
    mkdir -p /etc/netns/pod1; cp /etc/resolv.conf /etc/netns/pod1/resolv.conf" >/dev/null
  if ans="$(docker exec "$1" timeout 10 ip netns exec pod1 getent hosts "$1" 2>&1)"; then
    ok "$2: DNS from a pod netns via $dns_ip: $ans"
  else
    bad "$2: DNS from a pod netns via $dns_ip failed: $ans"
  fi
  docker exec "$1" ip netns del pod1 >/dev/null 2>&1 || true
}
pod_dns_check "$n1" "first boot"

docker exec "$n1" sh -c 'echo persisted >/var/lib/minik/smoke-marker'
mid="$(docker exec "$n1" cat /etc/machine-id)"
t=$(now); docker stop "$n1" >/dev/null; log "docker stop took $(since "$t")s"
t=$(now); docker start "$n1" >/dev/null
wait_containerd "$n1" >/dev/null && ok "restart: containerd active $(since "$t")s after docker start" || bad "restart: containerd not active"
[[ "$(docker exec "$n1" cat /var/lib/minik/smoke-marker 2>&1)" == persisted ]] && ok "/var survives stop/start" || bad "/var lost"
[[ "$(docker exec "$n1" cat /etc/machine-id)" == "$mid" ]] && ok "machine-id stable across restart" || bad "machine-id changed"
docker exec "$n1" ctr -n k8s.io images ls -q | grep -q "$HELLO" && ok "imported image survives restart" || bad "image lost on restart"
docker exec "$n1" getent hosts "$n1" >/dev/null && ok "DNS from the node after restart" || bad "DNS from the node after restart"
pod_dns_check "$n1" "after restart"

docker pause "$n1" >/dev/null
[[ "$(docker inspect -f '{{.State.Status}}' "$n1")" == paused ]] && ok "pause" || bad "pause"
docker unpause "$n1" >/dev/null
[[ "$(docker exec "$n1" systemctl is-active containerd)" == active ]] && ok "unpause: containerd active" || bad "unpause"

start_node n2
n2="$PREFIX-n2"
wait_containerd "$n2" >/dev/null && ok "second node: containerd active" || bad "second node"
[[ "$(docker exec "$n2" systemctl is-system-running --wait 2>&1)" == running ]] && ok "second node running" || bad "second node not running"
[[ "$(docker exec "$n1" systemctl is-system-running 2>&1)" == running ]] && ok "first node still running" || bad "first node degraded"
[[ "$(docker exec "$n1" cat /etc/machine-id)" != "$(docker exec "$n2" cat /etc/machine-id)" ]] && ok "machine-ids differ" || bad "machine-ids equal"
docker exec "$n2" getent hosts "$n1" >/dev/null && ok "n2 resolves n1" || bad "n2 cannot resolve n1"
docker save "$HELLO" | docker exec -i "$n2" ctr -n k8s.io images import - >/dev/null
out="$(docker exec "$n2" ctr -n k8s.io run --rm --cgroup "$(node_cgroup "$n2" | sed 's#/$##')/ctr-t2" "$HELLO" t2 2>&1)"
[[ "$out" == "hello from minik" ]] && ok "nested container on n2" || bad "nested container on n2: $out"

printf '%d passed, %d failed\n' "$pass" "$fail"
[[ "$fail" -eq 0 ]]
