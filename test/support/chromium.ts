/**
 * Headless Chromium for browser tests: Debian's `chromium` package (`/usr/bin/chromium`,
 * or CHROMIUM_PATH), driven by playwright-core. Never a browser download: the machines
 * reach no host for one (`.ci/run` apt-installs the package when it is missing).
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const chromiumInstalled = (): boolean => {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Decides whether a browser suite runs. In CI (`CI` set) a missing Chromium is a failure,
 * never a silent skip: the suite's guard test fails. Locally it is a loud skip.
 */
export function chromiumSuiteMode(): { run: boolean; missingInCi: boolean } {
  if (chromiumInstalled()) return { run: true, missingInCi: false };
  if (process.env.CI) return { run: false, missingInCi: true };
  console.warn(
    `\n*** Chromium is NOT installed (${CHROMIUM_PATH} is not an executable): SKIPPING the browser tests.\n` +
      '*** Install it with "apt-get install chromium" (Debian), or set CHROMIUM_PATH. In CI this is a failure.\n',
  );
  return { run: false, missingInCi: false };
}

/**
 * Launches it headless. As root (CI, this machine) Chromium needs --no-sandbox; the
 * background-networking flags keep it from calling Google's hosts, which a closed
 * network refuses many times a start.
 */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
