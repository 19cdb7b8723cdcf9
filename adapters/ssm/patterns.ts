/**
 * The patterns of values that reach a host: the SSM documents' allowedPatterns
 * (anchored; JS and SSM's regex engine agree on these) and the managed instance ids
 * that name hosts. Apart from the documents, so small bundles can check values cheaply.
 */
import { DISK_CONTROLLERS, FILESYSTEMS } from '../../domain/catalog';
import { DOMAIN_NAME, ID_DIGITS } from '../../domain/ids';

/** `^(a|b|c)$` of a catalogue's names (they are plain lowercase words: nothing to escape). */
const oneOf = (names: readonly string[]): string => `^(${names.join('|')})$`;

export const PATTERNS = {
  /** From domain/ids.ts, as every other id check. */
  domain: `^${DOMAIN_NAME}$`,
  dev: '^(vd|sd|hd)[b-z]$',
  /** From domain/catalog.ts. */
  bus: oneOf(DISK_CONTROLLERS.map((c) => c.name)),
  /** Absolute path; letters, digits and `/_.-` only; no `..` anywhere. */
  file: '^(?!.*\\.\\.)/[A-Za-z0-9/_.-]{1,200}$',
  libvirtUri: '^(qemu|qemu\\+ssh|qemu\\+tls|test)://[A-Za-z0-9.-]{0,64}/(system|session|default)$',
  id: `^${ID_DIGITS}$`,
  sizeMb: '^[1-9][0-9]{0,6}$',
  filesystem: oneOf(FILESYSTEMS.map((f) => f.name)),
  /** An SSM managed instance id: EC2 (`i-…`) or hybrid-activated (`mi-…`). */
  managedInstanceId: '^(i|mi)-[0-9a-f]{8,17}$',
} as const;
