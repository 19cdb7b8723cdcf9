/** Small helpers shared by the figures: statistics, timing, the result shape. */
import { performance } from 'node:perf_hooks';

export interface FigureResult {
  id: number;
  name: string;
  /** The headline ratio (or count/MB where the target is absolute). */
  measured: number;
  /** How `measured` is printed (e.g. "0.93x", "312 MB"). */
  shown: string;
  target: string;
  pass: boolean;
  /** Sub-results (per command, per function, ...) and absolute numbers as context. */
  details: Record<string, unknown>;
  notes?: string[];
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

export const now = (): number => performance.now();

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Runs `fn` over `items` with at most `limit` in flight. */
export const forEachLimit = async <T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> => {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
};

export const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

export const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
