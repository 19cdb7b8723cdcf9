#!/bin/sh
# CC1-ResizeDiskFile: grow the disk file <StoragePath>/<UserId>/<ImageId>. `truncate -s`
# to a larger size only adds a sparse tail: the data and the partition table stay;
# growing the partition and the filesystem inside is the guest's business (as with EBS
# and Cinder). A smaller target is refused (never shrinks), the same size is a success
# (a retry).
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

no_newlines "$SSM_StoragePath" "$SSM_UserId" "$SSM_ImageId" "$SSM_SizeMb"
file="$SSM_StoragePath/$SSM_UserId/$SSM_ImageId"
[ -f "$file" ] || fail "no disk file $file"
bytes=$(( SSM_SizeMb * 1048576 ))
current=$(stat -c %s "$file") || fail "stat $file"
if [ "$current" -eq "$bytes" ]; then echo "CC1_OK: $file is $SSM_SizeMb MiB already"; exit 0; fi
[ "$current" -lt "$bytes" ] || fail "$file is $current bytes: larger than $SSM_SizeMb MiB (a disk never shrinks)"
truncate -s "${SSM_SizeMb}M" "$file" || fail "truncate $file"
[ "$(stat -c %s "$file")" = "$bytes" ] || fail "$file did not grow to $SSM_SizeMb MiB"
echo "CC1_OK: grew $file from $current bytes to $SSM_SizeMb MiB"
