#!/bin/sh
# CC1-CreateDiskFile: make the raw disk file <StoragePath>/<UserId>/<ImageId>
# (truncate; mkfs at a 1 MiB offset and an msdos label unless raw). Idempotent.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/msdos-label.sh
. "$(dirname "$0")/lib/msdos-label.sh"

no_newlines "$SSM_StoragePath" "$SSM_UserId" "$SSM_ImageId" "$SSM_SizeMb" "$SSM_Filesystem"
dir="$SSM_StoragePath/$SSM_UserId"
final="$dir/$SSM_ImageId"
bytes=$(( SSM_SizeMb * 1048576 ))
mkdir -p "$dir" || fail "cannot create $dir"
if [ -f "$final" ] && [ "$(stat -c %s "$final")" = "$bytes" ]; then
  # A retry after success: the file was renamed into place only once complete.
  echo "CC1_OK: $final already exists"; exit 0
fi
# Build under a temporary name and rename at the end, so a crash never leaves a
# half-made file under the final name.
tmp="$dir/.$SSM_ImageId.tmp.$$"
trap 'rm -f "$tmp" "$tmp.fs"' EXIT
truncate -s "${SSM_SizeMb}M" "$tmp" || fail "truncate $tmp"
if [ "$SSM_Filesystem" != raw ]; then
  [ "$SSM_SizeMb" -ge 2 ] || fail "a $SSM_Filesystem disk needs at least 2 MiB"
  # An msdos partition counts sectors in 32 bits: at most 2 TiB (parted refused more too).
  [ $(( bytes / 512 - 2048 )) -le 4294967295 ] || fail "a $SSM_Filesystem disk holds at most 2097152 MiB (msdos partition table)"
  truncate -s "$(( SSM_SizeMb - 1 ))M" "$tmp.fs" || fail "truncate $tmp.fs"
  # The tools of domain/catalog.ts (ALL_MKFS_TOOLS; the catalogue test holds them equal).
  case "$SSM_Filesystem" in
    fat32) out=$(mkfs.vfat "$tmp.fs" 2>&1);;
    ext4) out=$(mkfs.ext4 -F -q "$tmp.fs" 2>&1);;
    reiserfs) out=$(mkfs.reiserfs -f -q "$tmp.fs" </dev/null 2>&1);;
    xfs) out=$(mkfs.xfs -f -q "$tmp.fs" 2>&1);;
    ntfs) out=$(mkfs.ntfs -Q -F "$tmp.fs" 2>&1);;
  esac || fail "mkfs $SSM_Filesystem: $out"
  dd if="$tmp.fs" of="$tmp" bs=1M seek=1 conv=notrunc,sparse status=none || fail "dd into $tmp"
  write_msdos_label "$tmp" "$SSM_Filesystem" || fail "write the partition table of $tmp"
fi
mv -f "$tmp" "$final" || fail "rename into $final"
echo "CC1_OK: created $final ($SSM_SizeMb MiB, $SSM_Filesystem)"
