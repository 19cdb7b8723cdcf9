/**
 * The patterns of values that reach a host: the SSM documents' allowedPatterns
 * (anchored; JS and SSM's regex engine agree on these) and the managed instance ids
 * that name hosts. Apart from the documents, so small bundles can check values cheaply.
 */
export const PATTERNS = {
  domain: '^vm-[0-9]{1,10}-[0-9]{1,10}$',
  dev: '^(vd|sd|hd)[b-z]$',
  bus: '^(virtio|usb|scsi|sata|ide)$',
  /** Absolute path; letters, digits and `/_.-` only; no `..` anywhere. */
  file: '^(?!.*\\.\\.)/[A-Za-z0-9/_.-]{1,200}$',
  libvirtUri: '^(qemu|qemu\\+ssh|qemu\\+tls|test)://[A-Za-z0-9.-]{0,64}/(system|session|default)$',
  id: '^[0-9]{1,10}$',
  sizeMb: '^[1-9][0-9]{0,6}$',
  filesystem: '^(raw|fat32|ext4|reiserfs|xfs|ntfs)$',
  /** An SSM managed instance id: EC2 (`i-…`) or hybrid-activated (`mi-…`). */
  managedInstanceId: '^(i|mi)-[0-9a-f]{8,17}$',
} as const;
