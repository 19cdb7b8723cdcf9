#!/bin/sh
# CC1-DeleteDiskFile: remove the disk file <StoragePath>/<UserId>/<ImageId> and the
# leftovers of an unfinished create. Idempotent.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

no_newlines "$SSM_StoragePath" "$SSM_UserId" "$SSM_ImageId"
dir="$SSM_StoragePath/$SSM_UserId"
rm -f "$dir/$SSM_ImageId" "$dir/.$SSM_ImageId.tmp."* || fail "rm $dir/$SSM_ImageId"
echo "CC1_OK: removed $dir/$SSM_ImageId"
