#!/bin/sh
# CC1-DetachDisk: hot-unplug a disk from a running domain (virsh detach-disk --live),
# confirmed by domblklist.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/virsh.sh
. "$(dirname "$0")/lib/virsh.sh"

no_newlines "$SSM_Domain" "$SSM_Dev" "$SSM_LibvirtUri" "$SSM_WaitSeconds"
look_up_domain
if [ -z "$(source_of "$SSM_Dev")" ]; then
  # Already gone (e.g. a retry after a crash): detaching twice is a success.
  echo "CC1_OK: $SSM_Dev is not attached"; exit 0
fi
if ! out=$(v detach-disk "$SSM_Domain" "$SSM_Dev" --live ${config:+"$config"} 2>&1); then
  virsh_failed detach-disk "$out"
fi
# virsh may say "detached" while the guest has not released the device yet: poll.
tries=$(( SSM_WaitSeconds * 5 ))
while [ -n "$(source_of "$SSM_Dev")" ]; do
  if [ "$tries" -le 0 ]; then
    echo "CC1_ERROR=not_confirmed: virsh detach-disk returned but $SSM_Dev is still attached after $SSM_WaitSeconds s (the guest did not release it)" >&2
    exit "$EXIT_NOT_CONFIRMED"
  fi
  tries=$(( tries - 1 ))
  sleep 0.2
done
echo "CC1_OK: detached $SSM_Dev persistent=$persistent"
