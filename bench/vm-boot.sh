#!/usr/bin/env bash
# qemu driver benchmark: VM boot to containerd ready, and the rest of the node lifecycle, under
# an accelerator (default tcg: KVM guests hang on the minik development machines).
#
# For 1 and 2 nodes (--no-kubernetes) it times minik's create / stop / start / pause / unpause /
# delete end to end, splits create into "VM up to SSH" and "systemd + containerd ready" (minik's
# own step timings), and reads the guest's `systemd-analyze` (kernel + userspace). It also times
# the accelerator probe of `--qemu-accel auto` (a test boot under KVM) once.
#
# Usage: bench/vm-boot.sh [ITERATIONS]   (default 3; prints medians in seconds)
# Env:   MINIK=path/to/minik (default target/release/minik, else target/debug/minik)
#        ACCEL=tcg|kvm|hvf (default tcg)
#        MINIK_VM_CACHE=DIR   a VM disk cache to reuse (default ~/.minik/cache/vm; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-3}"
ACCEL="${ACCEL:-tcg}"
MINIK="${MINIK:-}"
if [[ -z "$MINIK" ]]; then
  if [[ -x target/release/minik ]]; then MINIK=target/release/minik; else MINIK=target/debug/minik; fi
fi
SHARED="${MINIK_VM_CACHE:-$HOME/.minik/cache/vm}"
export MINIK_HOME="$(mktemp -d)"
export CI=true
trap 'for p in vm-1 vm-2 vm-auto; do "$MINIK" delete -p $p >/dev/null 2>&1 || true; done; rm -rf "$MINIK_HOME"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk 'NF { v[++n] = $1 } END { if (n == 0) print "-"; else if (n % 2) print v[(n + 1) / 2]; else printf "%.3f\n", (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
timed() { local t; t=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; elapsed "$t"; }

# The VM disk: reuse the shared cache (hard links), else build it (about 40 s).
mkdir -p "$MINIK_HOME/cache/vm"
if [[ -d "$SHARED" ]]; then
  for d in "$SHARED"/*/; do
    [[ -f "$d/disk.qcow2" ]] || continue
    mkdir -p "$MINIK_HOME/cache/vm/$(basename "$d")"
    for f in "$d"*; do ln "$f" "$MINIK_HOME/cache/vm/$(basename "$d")/" 2>/dev/null || cp "$f" "$MINIK_HOME/cache/vm/$(basename "$d")/"; done
  done
fi
t=$(now)
"$MINIK" node-image build --vm -q >/dev/null
disk_build=$(elapsed "$t")

# Create with minik's step timings: "✓ Creating node X (14.1s)", "✓ Waiting for ... (6.5s)".
create() {
  local p=$1 nodes=$2 out t
  t=$(now)
  out=$("$MINIK" start -p "$p" --driver qemu --qemu-accel "$ACCEL" --no-kubernetes --nodes "$nodes" --no-progress 2>&1) ||
    { echo "$out" >&2; exit 1; }
  echo "$(elapsed "$t") $(sed -n 's/.*Creating.*(\([0-9.]*\)s)$/\1/p' <<<"$out") $(sed -n 's/.*Waiting for systemd.*(\([0-9.]*\)s)$/\1/p' <<<"$out")"
}

declare -A R
for nodes in 1 2; do
  for op in create to_ssh to_containerd stop start pause unpause delete kernel userspace; do R[$nodes-$op]=""; done
  for _ in $(seq 1 "$N"); do
    p="vm-$nodes"
    read -r total ssh ready < <(create "$p" "$nodes")
    R[$nodes-create]+="$total"$'\n'
    R[$nodes-to_ssh]+="$ssh"$'\n'
    R[$nodes-to_containerd]+="$ready"$'\n'
    a=$("$MINIK" ssh -p "$p" -- systemd-analyze 2>/dev/null | head -n1)
    R[$nodes-kernel]+="$(sed -n 's/.* in \([0-9.]*\)s (kernel).*/\1/p' <<<"$a")"$'\n'
    R[$nodes-userspace]+="$(sed -n 's/.* + \([0-9.]*\)s (userspace).*/\1/p' <<<"$a")"$'\n'
    R[$nodes-stop]+="$(timed "$MINIK" stop -p "$p")"$'\n'
    R[$nodes-start]+="$(timed "$MINIK" start -p "$p")"$'\n'
    R[$nodes-pause]+="$(timed "$MINIK" pause -p "$p")"$'\n'
    R[$nodes-unpause]+="$(timed "$MINIK" unpause -p "$p")"$'\n'
    R[$nodes-delete]+="$(timed "$MINIK" delete -p "$p")"$'\n'
  done
done

# The accelerator probe of `auto`: one create with auto against one with the fixed accelerator.
t=$(now)
out=$("$MINIK" start -p vm-auto --driver qemu --qemu-accel auto --no-kubernetes --no-progress 2>&1) || true
auto_create=$(elapsed "$t")
auto_choice=$(sed -n 's/.*"accel": "\([a-z]*\)".*/\1/p' "$MINIK_HOME/profiles/vm-auto/qemu/settings.json" 2>/dev/null || true)
auto_warning=$(grep -o 'cannot run VMs here ([^)]*)' <<<"$out" || true)
"$MINIK" delete -p vm-auto >/dev/null 2>&1 || true

echo "accelerator: $ACCEL   iterations: $N   $(qemu-system-x86_64 --version | head -n1)"
echo "VM disk: build or reuse ${disk_build}s"
printf '%-6s %8s %8s %12s %8s %8s %8s %8s %8s %8s %10s\n' nodes create to-ssh to-containerd stop start pause unpause delete kernel userspace
for nodes in 1 2; do
  m() { printf '%s' "${R[$nodes-$1]}" | median; }
  printf '%-6s %8s %8s %12s %8s %8s %8s %8s %8s %8s %10s\n' "$nodes" "$(m create)" "$(m to_ssh)" "$(m to_containerd)" \
    "$(m stop)" "$(m start)" "$(m pause)" "$(m unpause)" "$(m delete)" "$(m kernel)" "$(m userspace)"
done
echo "auto: chose ${auto_choice:-?} in a ${auto_create}s create (1 node)${auto_warning:+; $auto_warning}"
