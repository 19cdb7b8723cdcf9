# write_msdos_label FILE FILESYSTEM: the msdos partition table that CC1's
# `parted -s mklabel msdos; parted -s mkpart primary 1048576b 100%` wrote, with printf
# and dd only (coreutils; a fresh Debian has no parted). Bytes 440..461 and 510..511 of
# the MBR: a random disk signature, one primary partition from sector 2048 (1 MiB) to
# the last sector, its type by filesystem (0x0c FAT32 LBA, 0x07 NTFS, 0x83 Linux), and
# the boot signature 0x55AA. CHS fields as parted writes them for a file (4 heads,
# 32 sectors, capped at 1023/3/32); readers use the LBA fields. No boot code: a data
# disk is never booted. POSIX printf has no \x, so bytes are octal escapes.
byte() { printf '\\%03o' "$1"; }
le32() { byte $(( $1 & 255 )); byte $(( $1 >> 8 & 255 )); byte $(( $1 >> 16 & 255 )); byte $(( $1 >> 24 & 255 )); }
write_msdos_label() {
  sectors=$(( $(stat -c %s "$1") / 512 ))
  last=$(( sectors - 1 ))
  c=$(( last / 128 )); h=$(( last / 32 % 4 )); s=$(( last % 32 + 1 ))
  if [ "$c" -gt 1023 ]; then c=1023; h=3; s=32; fi
  case "$2" in fat32) type=12;; ntfs) type=7;; *) type=131;; esac
  sig=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ') || return 1
  entry="\\000\\000\\001\\020$(byte "$type")$(byte "$h")$(byte $(( s | (c >> 2 & 192) )))$(byte $(( c & 255 )))$(le32 2048)$(le32 $(( sectors - 2048 )))"
  # shellcheck disable=SC2059 # the format is the bytes: octal escapes made above from numbers
  printf "$(le32 "$sig")\\000\\000$entry" | dd of="$1" bs=1 seek=440 conv=notrunc status=none || return 1
  printf '\125\252' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
}
