/** Size bounds of a storage image (MB), as CC1's portal allowed: the decider and the shared policies read them. */
export const SIZE_MIN_MB = 1;
export const SIZE_MAX_MB = 2_000_000;
