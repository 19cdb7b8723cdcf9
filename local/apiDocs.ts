/**
 * The API page of `npm start`: docs/openapi.yaml as a browsable page at `GET /docs`
 * (Swagger UI, from swagger-ui-dist), the spec itself at `/docs/openapi.yaml` (as
 * written) and `/openapi.json`. Local only, like the rest of local/: the deployed API
 * has no such page. Every asset is served from node_modules, never a CDN (the page
 * works offline), and only the files named in ASSETS are served: a request path never
 * becomes a file path, so no path reaches a file outside them.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

const SPEC_FILE = resolve(__dirname, '..', 'docs', 'openapi.yaml');
const SWAGGER_UI_DIR = dirname(require.resolve('swagger-ui-dist/package.json'));

/** The files of the page under /docs/: our two, and swagger-ui-dist's three. */
const ASSETS: Record<string, { type: string; file?: string; text?: () => Promise<string> }> = {
  '': { type: 'text/html; charset=utf-8', text: async () => PAGE_HTML },
  'init.js': { type: 'text/javascript; charset=utf-8', text: async () => INIT_JS },
  'openapi.yaml': { type: 'application/yaml; charset=utf-8', file: SPEC_FILE },
  'swagger-ui.css': { type: 'text/css; charset=utf-8', file: join(SWAGGER_UI_DIR, 'swagger-ui.css') },
  'swagger-ui-bundle.js': { type: 'text/javascript; charset=utf-8', file: join(SWAGGER_UI_DIR, 'swagger-ui-bundle.js') },
  'favicon-32x32.png': { type: 'image/png', file: join(SWAGGER_UI_DIR, 'favicon-32x32.png') },
};

/** The paths this module answers: `/docs`, anything under `/docs/`, and `/openapi.json`. */
export const isApiDocsPath = (path: string): boolean => path === '/docs' || path.startsWith('/docs/') || path === '/openapi.json';

/**
 * Scripts and styles from this server only (the CSP makes a CDN load fail loudly in the
 * browser); inline styles because Swagger UI's own CSS sets some; `data:` images are its icons.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CC1 Storage Images REST API (local)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <style>
    #local-intro { font-family: sans-serif; max-width: 1400px; margin: 0 auto; padding: 16px 20px 0; color: #3b4151; }
    #local-intro code { background: #f0f0f0; padding: 1px 4px; border-radius: 3px; white-space: nowrap; }
  </style>
</head>
<body>
  <section id="local-intro">
    <h2>Local mode (<code>npm start</code>)</h2>
    <p><strong>Token:</strong> every route needs <code>Authorization: Bearer &lt;JWT&gt;</code>. Locally the JWT is an
      HS256 token signed with <code>LOCAL_JWT_SECRET</code>; get one with
      <code>npm run -s token -- --user 42</code> (add <code>--admin</code> for the <code>/admin</code> routes,
      <code>--portal</code> for a portal service), then press <em>Authorize</em> below and paste it.
      See the README (Local mode) and docs/api.md (Authentication).</p>
    <p>The spec: <a href="/docs/openapi.yaml">/docs/openapi.yaml</a> (as written), <a href="/openapi.json">/openapi.json</a>.
      The CC1-compatible API (<code>POST /user/storage_image/&lt;fn&gt;/</code>) is described in docs/api.md, not here.</p>
  </section>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

// "Try it out" calls this server, whatever port it runs on (the spec names the default one).
const INIT_JS = `fetch('/openapi.json')
  .then((r) => r.json())
  .then((spec) => {
    spec.servers = [{ url: window.location.origin, description: 'This local server' }];
    window.ui = SwaggerUIBundle({ spec, dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null, docExpansion: 'list' });
  });
`;

const answer = (res: ServerResponse, method: string, status: number, type: string, body: string | Buffer) => {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
  res.end(method === 'HEAD' ? undefined : body);
};

const notFound = (res: ServerResponse, method: string, path: string) =>
  answer(res, method, 404, 'application/json', JSON.stringify({ error: { code: 'not_found', message: `No such page: ${path}.` } }));

/** Answers a request on an isApiDocsPath path (GET or HEAD; 404 for an unknown file). */
export const serveApiDocs = async (res: ServerResponse, method: string, path: string): Promise<void> => {
  if (method !== 'GET' && method !== 'HEAD') {
    res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' });
    res.end(JSON.stringify({ message: 'Method Not Allowed' })); // as API Gateway words it for the API's routes
    return;
  }
  if (path === '/openapi.json') {
    const spec = parse(await readFile(SPEC_FILE, 'utf8')) as unknown;
    return answer(res, method, 200, 'application/json; charset=utf-8', JSON.stringify(spec));
  }
  // `/docs` and `/docs/` are the page; anything else under /docs/ is a file name of ASSETS or unknown.
  const name = path === '/docs' ? '' : path.slice('/docs/'.length);
  const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!asset) return notFound(res, method, path);
  const body = asset.text ? await asset.text() : await readFile(asset.file!);
  return answer(res, method, 200, asset.type, body);
};
