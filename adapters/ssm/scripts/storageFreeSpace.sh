#!/bin/sh
# CC1-StorageFreeSpace: the free space (MiB) of the storage root, as a line
# CC1_FREE_MB=<n> (df -Pm). Creates the folder when missing.
# shellcheck disable=SC2154 # SSM_*: the document's parameters, exported by SSM (ENV_VAR)
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

no_newlines "$SSM_StoragePath"
mkdir -p "$SSM_StoragePath" || fail "cannot create $SSM_StoragePath"
out=$(df -Pm "$SSM_StoragePath" 2>&1) || fail "df $SSM_StoragePath: $out"
free=$(printf '%s\n' "$out" | awk 'NR == 2 { print $4 }')
case "$free" in ''|*[!0-9]*) fail "df $SSM_StoragePath: unexpected output: $out";; esac
echo "CC1_FREE_MB=$free"
