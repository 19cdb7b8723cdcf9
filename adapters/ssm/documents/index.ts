/**
 * The project's SSM Command documents (schema 2.2), defined once here and used by CDK
 * (infra/), by the local Run Command endpoint (local/runCommand/) and by the tests.
 *
 * Rules every document follows (SPEC 4.4):
 * - every parameter has a tight, anchored `allowedPattern`, checked by SSM before the
 *   command reaches a host;
 * - values reach the script only as environment variables (`interpolationType: ENV_VAR`
 *   makes SSM export parameter `X` as `SSM_X`), always double-quoted; no `{{ }}`;
 * - scripts are POSIX sh (the SSM agent runs runShellScript steps with `sh`);
 * - exit codes tell the adapter what went wrong (see EXIT below), and a marker line
 *   `CC1_ERROR=<kind>: ...` on stderr says the same for humans reading the logs.
 */
import { ALL_MKFS_TOOLS } from '../../../domain/catalog';
import { PATTERNS } from '../patterns';

export interface SsmParameter {
  type: 'String';
  description: string;
  allowedPattern: string;
  default?: string;
}

export interface SsmRunShellScriptStep {
  action: 'aws:runShellScript';
  name: string;
  inputs: { runCommand: string[]; interpolationType: 'ENV_VAR'; timeoutSeconds?: number };
}

export interface SsmCommandDocument {
  schemaVersion: '2.2';
  description: string;
  parameters: Record<string, SsmParameter>;
  mainSteps: SsmRunShellScriptStep[];
}

/** Exit codes of the documents' scripts (the step's ResponseCode). */
export const EXIT = {
  ok: 0,
  /** A value failed the in-script re-check (defence in depth after allowedPattern). */
  badParameter: 2,
  /** virsh: "failed to get domain" (not defined / not running on this host). */
  unknownDomain: 10,
  /** virsh or a file tool ran and failed. */
  failed: 11,
  /** virsh said yes but `domblklist` disagrees (e.g. a detach the guest did not complete). */
  notConfirmed: 12,
} as const;

// ---- parameter patterns: adapters/ssm/patterns.ts ----

export { PATTERNS };

const param = (description: string, allowedPattern: string, defaultValue?: string): SsmParameter =>
  defaultValue === undefined
    ? { type: 'String', description, allowedPattern }
    : { type: 'String', description, allowedPattern, default: defaultValue };

const libvirtUriParam = param('libvirt connection URI on the host', PATTERNS.libvirtUri, 'qemu:///system');

const step = (name: string, script: string, timeoutSeconds: number): SsmRunShellScriptStep => ({
  action: 'aws:runShellScript',
  name,
  inputs: { runCommand: script.trim().split('\n'), interpolationType: 'ENV_VAR', timeoutSeconds },
});

// ---- shared shell fragments ----

/**
 * Defence in depth: refuse a value that carries a newline (some regex engines let
 * `$` match before a final newline) before anything runs.
 */
const noNewlines = (...vars: string[]) => `
nl='
'
case ${vars.map((v) => `"$${v}"`).join('')} in *"$nl"*) echo "CC1_ERROR=bad_parameter: newline in a parameter" >&2; exit ${EXIT.badParameter};; esac`;

/** Look the domain up; sets $persistent to yes/no; exits 10 when libvirt does not know it. */
const lookUpDomain = `
v() { virsh -c "$SSM_LibvirtUri" "$@"; }
if ! info=$(v dominfo "$SSM_Domain" 2>&1); then
  case "$info" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $info" >&2; exit ${EXIT.unknownDomain};;
  esac
  echo "CC1_ERROR=failed: virsh dominfo: $info" >&2; exit ${EXIT.failed}
fi
persistent=no
if printf '%s\\n' "$info" | grep -Eq '^Persistent:[[:space:]]+yes$'; then persistent=yes; fi
config=''
if [ "$persistent" = yes ]; then config='--config'; fi`;

/** Prints the source of target $1 in the live domain, or nothing when absent. */
const sourceOf = `
source_of() {
  v domblklist "$SSM_Domain" --details | awk -v dev="$1" 'NR > 2 && $3 == dev { print $4 }'
}`;

/**
 * write_msdos_label FILE: the msdos partition table that CC1's
 * `parted -s mklabel msdos; parted -s mkpart primary 1048576b 100%` wrote, with
 * printf and dd only (coreutils; a fresh Debian has no parted). Bytes 440..461 and
 * 510..511 of the MBR: a random disk signature, one primary partition from sector 2048
 * (1 MiB) to the last sector, its type by filesystem (0x0c FAT32 LBA, 0x07 NTFS, 0x83
 * Linux), and the boot signature 0x55AA. CHS fields as parted writes them for a file
 * (4 heads, 32 sectors, capped at 1023/3/32); readers use the LBA fields. No boot code:
 * a data disk is never booted. POSIX printf has no \x, so bytes are octal escapes.
 */
const msdosLabel = `
byte() { printf '\\\\%03o' "$1"; }
le32() { byte $(( $1 & 255 )); byte $(( $1 >> 8 & 255 )); byte $(( $1 >> 16 & 255 )); byte $(( $1 >> 24 & 255 )); }
write_msdos_label() {
  sectors=$(( $(stat -c %s "$1") / 512 ))
  last=$(( sectors - 1 ))
  c=$(( last / 128 )); h=$(( last / 32 % 4 )); s=$(( last % 32 + 1 ))
  if [ "$c" -gt 1023 ]; then c=1023; h=3; s=32; fi
  case "$SSM_Filesystem" in fat32) type=12;; ntfs) type=7;; *) type=131;; esac
  sig=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ') || return 1
  entry="\\\\000\\\\000\\\\001\\\\020$(byte "$type")$(byte "$h")$(byte $(( s | (c >> 2 & 192) )))$(byte $(( c & 255 )))$(le32 2048)$(le32 $(( sectors - 2048 )))"
  printf "$(le32 "$sig")\\\\000\\\\000$entry" | dd of="$1" bs=1 seek=440 conv=notrunc status=none || return 1
  printf '\\125\\252' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
}`;

// ---- the documents ----

const attachDisk: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: hot-plug a raw disk file into a running libvirt domain (virsh attach-disk --live).',
  parameters: {
    Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
    File: param('absolute path of the raw disk file', PATTERNS.file),
    Dev: param('guest device, e.g. vdb', PATTERNS.dev),
    Bus: param('disk bus (controller)', PATTERNS.bus),
    LibvirtUri: libvirtUriParam,
  },
  mainSteps: [
    step(
      'attachDisk',
      `
${noNewlines('SSM_Domain', 'SSM_File', 'SSM_Dev', 'SSM_Bus', 'SSM_LibvirtUri')}
${lookUpDomain}
${sourceOf}
current=$(source_of "$SSM_Dev")
if [ "$current" = "$SSM_File" ]; then
  echo "CC1_OK: $SSM_Dev already attached with $SSM_File"; exit 0
fi
# --config only for persistent domains (transient ones have no config to update).
if ! out=$(v attach-disk "$SSM_Domain" "$SSM_File" "$SSM_Dev" --targetbus "$SSM_Bus" --driver qemu --subdriver raw --live \${config:+"$config"} 2>&1); then
  case "$out" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $out" >&2; exit ${EXIT.unknownDomain};;
  esac
  echo "CC1_ERROR=failed: virsh attach-disk: $out" >&2; exit ${EXIT.failed}
fi
current=$(source_of "$SSM_Dev")
if [ "$current" != "$SSM_File" ]; then
  echo "CC1_ERROR=not_confirmed: virsh attached $SSM_Dev but domblklist shows '$current'" >&2; exit ${EXIT.notConfirmed}
fi
echo "CC1_OK: attached $SSM_File as $SSM_Dev ($SSM_Bus) persistent=$persistent"
`,
      60,
    ),
  ],
};

const detachDisk: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: hot-unplug a disk from a running libvirt domain (virsh detach-disk --live), confirmed by domblklist.',
  parameters: {
    Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
    Dev: param('guest device, e.g. vdb', PATTERNS.dev),
    LibvirtUri: libvirtUriParam,
    WaitSeconds: param('seconds to wait for the guest to release the device (0..59)', '^([0-9]|[1-5][0-9])$', '10'),
  },
  mainSteps: [
    step(
      'detachDisk',
      `
${noNewlines('SSM_Domain', 'SSM_Dev', 'SSM_LibvirtUri', 'SSM_WaitSeconds')}
${lookUpDomain}
${sourceOf}
if [ -z "$(source_of "$SSM_Dev")" ]; then
  # Already gone (e.g. a retry after a crash): detaching twice is a success.
  echo "CC1_OK: $SSM_Dev is not attached"; exit 0
fi
if ! out=$(v detach-disk "$SSM_Domain" "$SSM_Dev" --live \${config:+"$config"} 2>&1); then
  case "$out" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $out" >&2; exit ${EXIT.unknownDomain};;
  esac
  echo "CC1_ERROR=failed: virsh detach-disk: $out" >&2; exit ${EXIT.failed}
fi
# virsh may say "detached" while the guest has not released the device yet: poll.
tries=$(( SSM_WaitSeconds * 5 ))
while [ -n "$(source_of "$SSM_Dev")" ]; do
  if [ "$tries" -le 0 ]; then
    echo "CC1_ERROR=not_confirmed: virsh detach-disk returned but $SSM_Dev is still attached after $SSM_WaitSeconds s (the guest did not release it)" >&2
    exit ${EXIT.notConfirmed}
  fi
  tries=$(( tries - 1 ))
  sleep 0.2
done
echo "CC1_OK: detached $SSM_Dev persistent=$persistent"
`,
      90,
    ),
  ],
};

const listDisks: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: list the disks of a libvirt domain (virsh domblklist --details), one tab-separated line per disk.',
  parameters: {
    Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
    LibvirtUri: libvirtUriParam,
  },
  mainSteps: [
    step(
      'listDisks',
      `
${noNewlines('SSM_Domain', 'SSM_LibvirtUri')}
if ! out=$(virsh -c "$SSM_LibvirtUri" domblklist "$SSM_Domain" --details 2>&1); then
  case "$out" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $out" >&2; exit ${EXIT.unknownDomain};;
  esac
  echo "CC1_ERROR=failed: virsh domblklist: $out" >&2; exit ${EXIT.failed}
fi
# Output: CC1_DISK<TAB>type<TAB>device<TAB>target<TAB>source (source keeps any spaces).
printf '%s\\n' "$out" | awk 'NR > 2 && NF >= 4 {
  src = $0; sub(/^[ \\t]*[^ \\t]+[ \\t]+[^ \\t]+[ \\t]+[^ \\t]+[ \\t]+/, "", src)
  printf "CC1_DISK\\t%s\\t%s\\t%s\\t%s\\n", $1, $2, $3, src
}'
`,
      60,
    ),
  ],
};

/**
 * Grows an attached disk live: `virsh blockresize` (QEMU's block_resize: the guest sees
 * the new capacity; for a raw file the file grows). Confirmed with `domblkinfo`; a
 * disk at that size already is a success (a retry), a larger one is refused.
 */
const blockResize: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: grow a disk of a running libvirt domain live (virsh blockresize), confirmed by domblkinfo. Never shrinks.',
  parameters: {
    Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
    Dev: param('guest device, e.g. vdb', PATTERNS.dev),
    SizeMb: param('new size in MiB (1..9999999), not smaller than the disk', PATTERNS.sizeMb),
    LibvirtUri: libvirtUriParam,
  },
  mainSteps: [
    step(
      'blockResize',
      `
${noNewlines('SSM_Domain', 'SSM_Dev', 'SSM_SizeMb', 'SSM_LibvirtUri')}
${lookUpDomain}
${sourceOf}
if [ -z "$(source_of "$SSM_Dev")" ]; then
  echo "CC1_ERROR=failed: $SSM_Dev is not a disk of $SSM_Domain" >&2; exit ${EXIT.failed}
fi
bytes=$(( SSM_SizeMb * 1048576 ))
capacity() { v domblkinfo "$SSM_Domain" "$SSM_Dev" 2>/dev/null | awk '$1 == "Capacity:" { print $2 }'; }
current=$(capacity)
case "$current" in ''|*[!0-9]*) echo "CC1_ERROR=failed: virsh domblkinfo $SSM_Dev: no capacity" >&2; exit ${EXIT.failed};; esac
if [ "$current" -eq "$bytes" ]; then echo "CC1_OK: $SSM_Dev is $SSM_SizeMb MiB already"; exit 0; fi
if [ "$current" -gt "$bytes" ]; then
  echo "CC1_ERROR=failed: $SSM_Dev has $current bytes: larger than $SSM_SizeMb MiB (a disk never shrinks)" >&2; exit ${EXIT.failed}
fi
if ! out=$(v blockresize "$SSM_Domain" "$SSM_Dev" "\${SSM_SizeMb}M" 2>&1); then
  case "$out" in
    *"failed to get domain"*) echo "CC1_ERROR=unknown_domain: $out" >&2; exit ${EXIT.unknownDomain};;
  esac
  echo "CC1_ERROR=failed: virsh blockresize: $out" >&2; exit ${EXIT.failed}
fi
now=$(capacity)
if [ "$now" != "$bytes" ]; then
  echo "CC1_ERROR=not_confirmed: virsh blockresize returned but domblkinfo shows $now bytes" >&2; exit ${EXIT.notConfirmed}
fi
echo "CC1_OK: $SSM_Dev of $SSM_Domain grew to $SSM_SizeMb MiB"
`,
      60,
    ),
  ],
};

const createDiskFile: SsmCommandDocument = {
  schemaVersion: '2.2',
  description:
    'CC1: make the raw disk file <StoragePath>/<UserId>/<ImageId> (truncate; mkfs at a 1 MiB offset and an msdos label unless raw). Idempotent.',
  parameters: {
    StoragePath: param('storage root on the storage host', PATTERNS.file),
    UserId: param('owner user id', PATTERNS.id),
    ImageId: param('storage image id', PATTERNS.id),
    SizeMb: param('size in MiB (1..9999999)', PATTERNS.sizeMb),
    Filesystem: param('filesystem to make inside one msdos partition, or raw', PATTERNS.filesystem),
  },
  mainSteps: [
    step(
      'createDiskFile',
      `
${noNewlines('SSM_StoragePath', 'SSM_UserId', 'SSM_ImageId', 'SSM_SizeMb', 'SSM_Filesystem')}
fail() { echo "CC1_ERROR=failed: $*" >&2; exit ${EXIT.failed}; }
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
${msdosLabel}
truncate -s "\${SSM_SizeMb}M" "$tmp" || fail "truncate $tmp"
if [ "$SSM_Filesystem" != raw ]; then
  [ "$SSM_SizeMb" -ge 2 ] || fail "a $SSM_Filesystem disk needs at least 2 MiB"
  # An msdos partition counts sectors in 32 bits: at most 2 TiB (parted refused more too).
  [ $(( bytes / 512 - 2048 )) -le 4294967295 ] || fail "a $SSM_Filesystem disk holds at most 2097152 MiB (msdos partition table)"
  truncate -s "$(( SSM_SizeMb - 1 ))M" "$tmp.fs" || fail "truncate $tmp.fs"
  case "$SSM_Filesystem" in
    fat32) out=$(mkfs.vfat "$tmp.fs" 2>&1);;
    ext4) out=$(mkfs.ext4 -F -q "$tmp.fs" 2>&1);;
    reiserfs) out=$(mkfs.reiserfs -f -q "$tmp.fs" </dev/null 2>&1);;
    xfs) out=$(mkfs.xfs -f -q "$tmp.fs" 2>&1);;
    ntfs) out=$(mkfs.ntfs -Q -F "$tmp.fs" 2>&1);;
  esac || fail "mkfs $SSM_Filesystem: $out"
  dd if="$tmp.fs" of="$tmp" bs=1M seek=1 conv=notrunc,sparse status=none || fail "dd into $tmp"
  write_msdos_label "$tmp" || fail "write the partition table of $tmp"
fi
mv -f "$tmp" "$final" || fail "rename into $final"
echo "CC1_OK: created $final ($SSM_SizeMb MiB, $SSM_Filesystem)"
`,
      900,
    ),
  ],
};

const deleteDiskFile: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: remove the disk file <StoragePath>/<UserId>/<ImageId> (and leftovers of an unfinished create). Idempotent.',
  parameters: {
    StoragePath: param('storage root on the storage host', PATTERNS.file),
    UserId: param('owner user id', PATTERNS.id),
    ImageId: param('storage image id', PATTERNS.id),
  },
  mainSteps: [
    step(
      'deleteDiskFile',
      `
${noNewlines('SSM_StoragePath', 'SSM_UserId', 'SSM_ImageId')}
dir="$SSM_StoragePath/$SSM_UserId"
rm -f "$dir/$SSM_ImageId" "$dir/.$SSM_ImageId.tmp."* || { echo "CC1_ERROR=failed: rm $dir/$SSM_ImageId" >&2; exit ${EXIT.failed}; }
echo "CC1_OK: removed $dir/$SSM_ImageId"
`,
      120,
    ),
  ],
};

/**
 * Grows a disk file (CreateDiskFile's family). `truncate -s` to a larger size only adds
 * a sparse tail: the data and the partition table stay; growing the partition and the
 * filesystem inside is the guest's business (as with EBS and Cinder). A smaller target is
 * refused (never shrinks), the same size is a success (a retry).
 */
const resizeDiskFile: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: grow the raw disk file <StoragePath>/<UserId>/<ImageId> to SizeMb MiB (truncate; never shrinks). Idempotent.',
  parameters: {
    StoragePath: param('storage root on the storage host', PATTERNS.file),
    UserId: param('owner user id', PATTERNS.id),
    ImageId: param('storage image id', PATTERNS.id),
    SizeMb: param('new size in MiB (1..9999999), not smaller than the file', PATTERNS.sizeMb),
  },
  mainSteps: [
    step(
      'resizeDiskFile',
      `
${noNewlines('SSM_StoragePath', 'SSM_UserId', 'SSM_ImageId', 'SSM_SizeMb')}
fail() { echo "CC1_ERROR=failed: $*" >&2; exit ${EXIT.failed}; }
file="$SSM_StoragePath/$SSM_UserId/$SSM_ImageId"
[ -f "$file" ] || fail "no disk file $file"
bytes=$(( SSM_SizeMb * 1048576 ))
current=$(stat -c %s "$file") || fail "stat $file"
if [ "$current" -eq "$bytes" ]; then echo "CC1_OK: $file is $SSM_SizeMb MiB already"; exit 0; fi
[ "$current" -lt "$bytes" ] || fail "$file is $current bytes: larger than $SSM_SizeMb MiB (a disk never shrinks)"
truncate -s "\${SSM_SizeMb}M" "$file" || fail "truncate $file"
[ "$(stat -c %s "$file")" = "$bytes" ] || fail "$file did not grow to $SSM_SizeMb MiB"
echo "CC1_OK: grew $file from $current bytes to $SSM_SizeMb MiB"
`,
      120,
    ),
  ],
};

const storageFreeSpace: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: print the free space (MiB) of the storage root <StoragePath> as a line CC1_FREE_MB=<n> (df -Pm). Creates the folder when missing.',
  parameters: {
    StoragePath: param('storage root on the storage host', PATTERNS.file),
  },
  mainSteps: [
    step(
      'storageFreeSpace',
      `
${noNewlines('SSM_StoragePath')}
fail() { echo "CC1_ERROR=failed: $*" >&2; exit ${EXIT.failed}; }
mkdir -p "$SSM_StoragePath" || fail "cannot create $SSM_StoragePath"
out=$(df -Pm "$SSM_StoragePath" 2>&1) || fail "df $SSM_StoragePath: $out"
free=$(printf '%s\n' "$out" | awk 'NR == 2 { print $4 }')
case "$free" in ''|*[!0-9]*) fail "df $SSM_StoragePath: unexpected output: $out";; esac
echo "CC1_FREE_MB=$free"
`,
      60,
    ),
  ],
};

// The tool names go into the script as words: they come from the catalogue, never from
// a request, and this check keeps it that way.
const mkfsTools = ALL_MKFS_TOOLS.map((tool) => {
  if (!/^mkfs\.[a-z0-9]+$/.test(tool)) throw new Error(`not a mkfs tool name: ${tool}`);
  return tool;
});

const storageTools: SsmCommandDocument = {
  schemaVersion: '2.2',
  description: 'CC1: print the mkfs tools the storage host has (as CreateDiskFile finds them, on PATH), one line CC1_MKFS=<tool> each.',
  parameters: {},
  mainSteps: [
    step(
      'storageTools',
      `
for tool in ${mkfsTools.join(' ')}; do
  if command -v "$tool" >/dev/null 2>&1; then echo "CC1_MKFS=$tool"; fi
done
# The end marker tells "no tool" from a truncated or foreign output.
echo "CC1_TOOLS_END"
`,
      60,
    ),
  ],
};

/** Keys the adapters use; the deployed document names come from configuration. */
export type DocumentKey =
  | 'attachDisk'
  | 'detachDisk'
  | 'listDisks'
  | 'blockResize'
  | 'createDiskFile'
  | 'deleteDiskFile'
  | 'resizeDiskFile'
  | 'storageFreeSpace'
  | 'storageTools';

/** Default names (CDK may name them otherwise and pass the names to the adapters). */
export const DEFAULT_DOCUMENT_NAMES: Record<DocumentKey, string> = {
  attachDisk: 'CC1-AttachDisk',
  detachDisk: 'CC1-DetachDisk',
  listDisks: 'CC1-ListDisks',
  blockResize: 'CC1-BlockResize',
  createDiskFile: 'CC1-CreateDiskFile',
  deleteDiskFile: 'CC1-DeleteDiskFile',
  resizeDiskFile: 'CC1-ResizeDiskFile',
  storageFreeSpace: 'CC1-StorageFreeSpace',
  storageTools: 'CC1-StorageTools',
};

export const DOCUMENTS: Record<DocumentKey, { name: string; content: SsmCommandDocument }> = {
  attachDisk: { name: DEFAULT_DOCUMENT_NAMES.attachDisk, content: attachDisk },
  detachDisk: { name: DEFAULT_DOCUMENT_NAMES.detachDisk, content: detachDisk },
  listDisks: { name: DEFAULT_DOCUMENT_NAMES.listDisks, content: listDisks },
  blockResize: { name: DEFAULT_DOCUMENT_NAMES.blockResize, content: blockResize },
  createDiskFile: { name: DEFAULT_DOCUMENT_NAMES.createDiskFile, content: createDiskFile },
  deleteDiskFile: { name: DEFAULT_DOCUMENT_NAMES.deleteDiskFile, content: deleteDiskFile },
  resizeDiskFile: { name: DEFAULT_DOCUMENT_NAMES.resizeDiskFile, content: resizeDiskFile },
  storageFreeSpace: { name: DEFAULT_DOCUMENT_NAMES.storageFreeSpace, content: storageFreeSpace },
  storageTools: { name: DEFAULT_DOCUMENT_NAMES.storageTools, content: storageTools },
};

/** Documents by name, as a Run Command endpoint looks them up. */
export const documentsByName = (
  names: Record<DocumentKey, string> = DEFAULT_DOCUMENT_NAMES,
): Map<string, SsmCommandDocument> =>
  new Map((Object.keys(DOCUMENTS) as DocumentKey[]).map((key) => [names[key], DOCUMENTS[key].content]));
