#!/bin/sh
# CC1-ListDisks: the disks of a domain (virsh domblklist --details), one line each.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/virsh.sh
. "$(dirname "$0")/lib/virsh.sh"

no_newlines "$SSM_Domain" "$SSM_LibvirtUri"
if ! out=$(v domblklist "$SSM_Domain" --details 2>&1); then
  virsh_failed domblklist "$out"
fi
# Output: CC1_DISK<TAB>type<TAB>device<TAB>target<TAB>source (source keeps any spaces).
printf '%s\n' "$out" | awk 'NR > 2 && NF >= 4 {
  src = $0; sub(/^[ \t]*[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", src)
  printf "CC1_DISK\t%s\t%s\t%s\t%s\n", $1, $2, $3, src
}'
