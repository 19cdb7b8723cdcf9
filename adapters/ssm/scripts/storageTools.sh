#!/bin/sh
# CC1-StorageTools: the mkfs tools the storage host has (as CreateDiskFile finds them,
# on PATH), one line CC1_MKFS=<tool> each.

# The loader puts ALL_MKFS_TOOLS of domain/catalog.ts here, each checked to be a plain
# mkfs.<name> word: they come from the catalogue, never from a request.
set -- @ALL_MKFS_TOOLS@
for tool in "$@"; do
  if command -v "$tool" >/dev/null 2>&1; then echo "CC1_MKFS=$tool"; fi
done
# The end marker tells "no tool" from a truncated or foreign output.
echo "CC1_TOOLS_END"
