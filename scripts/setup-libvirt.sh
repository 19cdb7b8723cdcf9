#!/usr/bin/env bash
# Make a Debian machine run libvirtd + QEMU as root, without systemd (containers, CI).
# Idempotent: safe to run again; it only installs/starts what is missing.
# Usage: bash scripts/setup-libvirt.sh
set -euo pipefail

log() { echo "[setup-libvirt] $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "[setup-libvirt] must run as root" >&2
  exit 1
fi

# 1. Packages: libvirt + QEMU, and the tools the storage-host document uses.
PACKAGES=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  parted dosfstools e2fsprogs xfsprogs reiserfsprogs ntfs-3g util-linux file)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages already installed"
fi

# 2. Directories the daemons expect (normally made by systemd units / tmpfiles).
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /run/libvirt

# 3. Run QEMU as root: otherwise libvirt tries to switch to the libvirt-qemu user and
#    every define/start takes ~40 s (and fails to open root-owned disk files).
conf=/etc/libvirt/qemu.conf
set_conf() { # key value
  if grep -qE "^[[:space:]]*$1[[:space:]]*=" "$conf"; then
    sed -i -E "s|^[[:space:]]*$1[[:space:]]*=.*|$1 = \"$2\"|" "$conf"
  else
    echo "$1 = \"$2\"" >>"$conf"
  fi
}
set_conf user "+0"
set_conf group "+0"

# 4. Start the daemons if not running (no systemd here).
if ! pgrep -x virtlogd >/dev/null; then
  log "starting virtlogd"
  virtlogd -d
fi
if ! pgrep -x libvirtd >/dev/null; then
  log "starting libvirtd"
  libvirtd -d
fi

# 5. Wait until libvirtd answers (it takes a moment to open its socket).
for _ in $(seq 1 60); do
  if virsh -c qemu:///system list >/dev/null 2>&1; then
    log "libvirtd is ready: $(virsh -c qemu:///system version --daemon 2>/dev/null | tr '\n' ' ')"
    if [ -w /dev/kvm ]; then log "/dev/kvm is usable (KVM)"; else log "no usable /dev/kvm: QEMU will use TCG"; fi
    exit 0
  fi
  sleep 0.5
done
echo "[setup-libvirt] libvirtd did not answer on qemu:///system within 30 s" >&2
exit 1
