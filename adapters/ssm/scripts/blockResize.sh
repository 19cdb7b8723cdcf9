#!/bin/sh
# CC1-BlockResize: grow a disk of a running domain live (virsh blockresize: QEMU's
# block_resize; the guest sees the new capacity and a raw file grows), confirmed with
# domblkinfo. A disk at that size already is a success (a retry), a larger one is refused.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/virsh.sh
. "$(dirname "$0")/lib/virsh.sh"

no_newlines "$SSM_Domain" "$SSM_Dev" "$SSM_SizeMb" "$SSM_LibvirtUri"
look_up_domain
if [ -z "$(source_of "$SSM_Dev")" ]; then
  fail "$SSM_Dev is not a disk of $SSM_Domain"
fi
bytes=$(( SSM_SizeMb * 1048576 ))
capacity() { v domblkinfo "$SSM_Domain" "$SSM_Dev" 2>/dev/null | awk '$1 == "Capacity:" { print $2 }'; }
current=$(capacity)
case "$current" in ''|*[!0-9]*) fail "virsh domblkinfo $SSM_Dev: no capacity";; esac
if [ "$current" -eq "$bytes" ]; then echo "CC1_OK: $SSM_Dev is $SSM_SizeMb MiB already"; exit 0; fi
if [ "$current" -gt "$bytes" ]; then
  fail "$SSM_Dev has $current bytes: larger than $SSM_SizeMb MiB (a disk never shrinks)"
fi
if ! out=$(v blockresize "$SSM_Domain" "$SSM_Dev" "${SSM_SizeMb}M" 2>&1); then
  virsh_failed blockresize "$out"
fi
now=$(capacity)
if [ "$now" != "$bytes" ]; then
  echo "CC1_ERROR=not_confirmed: virsh blockresize returned but domblkinfo shows $now bytes" >&2; exit "$EXIT_NOT_CONFIRMED"
fi
echo "CC1_OK: $SSM_Dev of $SSM_Domain grew to $SSM_SizeMb MiB"
