/**
 * The API page of `npm start` (`GET /docs`, local/apiDocs.ts): served over HTTP with no
 * token, unknown files 404, no path reaching a file outside the page's assets; and, in
 * headless Chromium, the page renders every route of docs/openapi.yaml and the local
 * token, loading nothing from any other host. The screenshot is written to
 * coverage/screenshots/api-docs.png (ignored by git).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parse } from 'yaml';
import { chromiumSuiteMode, CHROMIUM_PATH, launchChromium } from '../support/chromium';
import { REPO_ROOT, startE2eStack, type E2eStack } from '../support/e2eStack';
import { OPENAPI_PATH } from '../support/e2eOpenapi';

const SCREENSHOT = join(REPO_ROOT, 'coverage', 'screenshots', 'api-docs.png');
const VIEWPORT = { width: 1280, height: 900 };
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every route of the spec, as `METHOD /path/{param}`. */
const specRoutes = (): string[] => {
  const spec = parse(readFileSync(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((key) => HTTP_METHODS.includes(key))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );
};

const mode = chromiumSuiteMode();

let stack: E2eStack;
let browser: Browser | undefined;
beforeAll(async () => {
  // Both start at once: on a loaded 2-core machine each takes seconds.
  [stack, browser] = await Promise.all([startE2eStack(), mode.run ? launchChromium() : undefined]);
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A GET with the path sent byte for byte (fetch would resolve `..` and `%2e` first). */
const rawGet = (path: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const url = new URL(stack.url);
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });

describe('GET /docs over HTTP', () => {
  test('the page, its assets and the spec answer without a token; the spec is the file as written', async () => {
    const page = await stack.call('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('npm run -s token');
    // Every script and stylesheet the page names is served by this server.
    const assets = [...page.text.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(expect.arrayContaining(['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css', '/docs/init.js']));
    for (const asset of assets) expect([asset, (await stack.call('GET', asset)).status]).toEqual([asset, 200]);
    expect(page.text).not.toMatch(/(?:src|href)="(?:https?:)?\/\//); // no other host

    const yaml = await stack.call('GET', '/docs/openapi.yaml');
    expect(yaml.status).toBe(200);
    expect(yaml.text).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
    const json = await stack.call('GET', '/openapi.json');
    expect(json.status).toBe(200);
    expect(json.body).toEqual(parse(yaml.text));
  });

  test('an unknown file under /docs is a 404, another method a 405, never a 500', async () => {
    for (const path of ['/docs/nope', '/docs/index.html', '/docs/package.json', '/docs/__proto__', '/docs/constructor', '/docs/swagger-ui-bundle.js.map', '/docs//etc/passwd', '/docs/init.js/x']) {
      expect([path, (await rawGet(path)).status]).toEqual([path, 404]);
    }
    const post = await stack.call('POST', '/docs', { body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  test('no path reaches a file outside the page assets (dot segments, encoded, backslashes)', async () => {
    const packageJson = readFileSync(join(REPO_ROOT, 'package.json'), 'utf8');
    const tries = [
      '/docs/../package.json',
      '/docs/../../package.json',
      '/docs/%2e%2e/package.json',
      '/docs/%2E%2E%2Fpackage.json',
      '/docs/..%2fpackage.json',
      '/docs/..%5cpackage.json',
      '/docs/..\\package.json',
      '/docs/%252e%252e/package.json',
      '/docs/./openapi.yaml',
      '/docs/../node_modules/swagger-ui-dist/package.json',
      '/docs/../../../../etc/passwd',
    ];
    for (const path of tries) {
      const reply = await rawGet(path);
      // 400: the server refuses such paths before routing (pathSafety.ts); 404: no such asset.
      if (reply.status !== 400 && reply.status !== 404) throw new Error(`${path} answered ${reply.status}: ${reply.body.slice(0, 200)}`);
      expect(reply.body).not.toContain('"name": "cc1-storage-images"');
      expect(reply.body).not.toBe(packageJson);
      expect(reply.body).not.toContain('root:');
    }
  });
});

if (mode.missingInCi) {
  test('Chromium is available (required in CI)', () => {
    throw new Error(`CI is set but ${CHROMIUM_PATH} is not installed: .ci/run apt-installs Debian's chromium`);
  });
}

(mode.run ? describe : describe.skip)('GET /docs in headless Chromium', () => {
  let page: Page;
  const offsite: string[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    page = await browser!.newPage({ viewport: VIEWPORT });
    // Offline by construction: a request to any other host is refused and recorded.
    const origin = new URL(stack.url).origin;
    await page.route('**/*', (route) => {
      if (new URL(route.request().url()).origin === origin) return route.continue();
      offsite.push(route.request().url());
      return route.abort();
    });
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => message.type() === 'error' && errors.push(`console: ${message.text()}`));
    await page.goto(`${stack.url}/docs`, { waitUntil: 'load', timeout: 30_000 });
    // Rendered: Swagger UI has drawn one operation block per route (a condition, not a sleep).
    await page.waitForSelector('.opblock .opblock-summary-path', { timeout: 30_000 });
  }, 60_000);

  test('lists every route of docs/openapi.yaml, and nothing else', async () => {
    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
    );
    const routes = specRoutes();
    expect(routes.length).toBeGreaterThan(15);
    // A route tagged twice (admin and quota) is drawn twice; the webhook is not a route.
    const listedRoutes = [...new Set(listed.filter((r) => r.includes(' /')))].sort();
    expect(listedRoutes).toEqual([...routes].sort());
  });

  test('documents the local token, and the Authorize dialog shows the scheme with it', async () => {
    await expect(page.locator('#local-intro').innerText()).resolves.toMatch(/npm run -s token -- --user 42/);
    await page.click('.auth-wrapper .authorize');
    const dialog = page.locator('.modal-ux');
    await dialog.waitFor({ state: 'visible', timeout: 10_000 });
    await expect(dialog.innerText()).resolves.toContain('npm run token -- --user 42');
    await page.click('.modal-ux .close-modal');
    await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
  });

  test('"Try it out" targets this server, whatever its port', async () => {
    await expect(page.locator('.servers select').inputValue()).resolves.toBe(new URL(stack.url).origin);
  });

  test('a screenshot of the rendered page is a real PNG', async () => {
    const png = await page.screenshot({ type: 'png' });
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    writeFileSync(SCREENSHOT, png);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.toString('latin1', 12, 16)).toBe('IHDR');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([VIEWPORT.width, VIEWPORT.height]);
    expect(png.length).toBeGreaterThan(30_000); // a blank 1280x900 page compresses to a few KB
  });

  test('loaded nothing from another host, and logged no error', () => {
    expect(offsite).toEqual([]);
    expect(errors).toEqual([]);
  });
});
