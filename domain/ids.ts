/**
 * CC1 ids (users, VMs, images): positive integers of at most 15 digits, so every one is
 * an exact JS Number (Number.MAX_SAFE_INTEGER has 16). The one source of the id rule:
 * the APIs, tokens, VM events, the operators' CLI and the SSM documents' allowedPatterns
 * all derive theirs from here (a user with an 11-digit id once passed auth and then
 * failed the SSM parameter check, which allowed 10).
 */
export const ID_MAX_DIGITS = 15;

/** The digits of an id, as a regex source without anchors (for composed patterns). */
export const ID_DIGITS = `[1-9][0-9]{0,${ID_MAX_DIGITS - 1}}`;

/** A whole id, anchored. */
export const ID_PATTERN = new RegExp(`^${ID_DIGITS}$`);

/** The largest id: 15 nines. */
export const ID_MAX = 10 ** ID_MAX_DIGITS - 1;

/** The libvirt domain name of a VM, `vm-<vmId>-<userId>` (CC1's naming), as a regex source without anchors. */
export const DOMAIN_NAME = `vm-${ID_DIGITS}-${ID_DIGITS}`;

export const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= ID_MAX;
