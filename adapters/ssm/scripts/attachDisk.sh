#!/bin/sh
# CC1-AttachDisk: hot-plug a raw disk file into a running domain (virsh attach-disk --live).
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/virsh.sh
. "$(dirname "$0")/lib/virsh.sh"

no_newlines "$SSM_Domain" "$SSM_File" "$SSM_Dev" "$SSM_Bus" "$SSM_LibvirtUri"
look_up_domain
current=$(source_of "$SSM_Dev")
if [ "$current" = "$SSM_File" ]; then
  echo "CC1_OK: $SSM_Dev already attached with $SSM_File"; exit 0
fi
# --config only for persistent domains (transient ones have no config to update).
if ! out=$(v attach-disk "$SSM_Domain" "$SSM_File" "$SSM_Dev" --targetbus "$SSM_Bus" --driver qemu --subdriver raw --live ${config:+"$config"} 2>&1); then
  virsh_failed attach-disk "$out"
fi
current=$(source_of "$SSM_Dev")
if [ "$current" != "$SSM_File" ]; then
  echo "CC1_ERROR=not_confirmed: virsh attached $SSM_Dev but domblklist shows '$current'" >&2; exit "$EXIT_NOT_CONFIRMED"
fi
echo "CC1_OK: attached $SSM_File as $SSM_Dev ($SSM_Bus) persistent=$persistent"
