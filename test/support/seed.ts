/**
 * Seeded randomness for the tests: one seed per run, printed, and replayable with
 * `CC1_TEST_SEED=<seed> npx jest <file>`. A failure found by a random run is then a
 * failure anyone can run again.
 */

/** The run's seed: CC1_TEST_SEED when given, else a fresh one. Printed either way. */
export const testSeed = (suite: string): number => {
  const given = process.env.CC1_TEST_SEED;
  const seed = given !== undefined && /^[0-9]{1,10}$/.test(given) ? Number(given) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
  // stdout, not console.log: jest's console would bury it under a stack trace.
  process.stdout.write(`${suite}: seed ${seed} (replay: CC1_TEST_SEED=${seed})\n`);
  return seed;
};

/** mulberry32: a small, fast PRNG with a 32-bit state; the same seed gives the same sequence. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
