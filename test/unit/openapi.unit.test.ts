/**
 * docs/openapi.yaml against the code: the same routes as the route table (both ways), a valid
 * OpenAPI 3.1 document, the catalogues and error codes of the domain, Idempotency-Key
 * on every write, and request bodies the handlers accept exactly.
 */
import { spawnSync } from 'node:child_process';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { StorageHost } from '../../application/ports';
import { toImageView } from '../../application/views';
import { DISK_CONTROLLERS, FILESYSTEMS, IMAGE_STATES } from '../../domain/catalog';
import { DomainError, ERROR_CODES } from '../../domain/errors';
import { ROUTES, type RouteRequest } from '../../functions/restApi/routes';
import { REST_ROUTES, routeKeyOf } from '../../functions/shared/routeTable';
import { loadOpenapi, OPENAPI_PATH } from '../support/e2eOpenapi';

const doc = loadOpenapi();
const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];

const documentedRoutes = (): string[] =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((k) => METHODS.includes(k))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );

const operations = () =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([k]) => METHODS.includes(k))
      .map(([method, op]) => ({ path, method: method.toUpperCase(), op, pathParams: (item.parameters ?? []) as any[] })),
  );

const deref = (node: any): any => {
  if (node && typeof node.$ref === 'string') {
    return deref(node.$ref.slice(2).split('/').reduce((at: any, key: string) => at?.[key.replace(/~1/g, '/')], doc));
  }
  return node;
};

/** Runs the OpenAPI 3.1 validator (an ES module) in a child node. */
const validateDocument = (text: string): { valid: boolean; errors?: unknown } => {
  const script = `
    import { Validator } from '@seriousme/openapi-schema-validator';
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    const validator = new Validator();
    const result = await validator.validate(text);
    process.stdout.write(JSON.stringify({ valid: result.valid, errors: result.errors, version: validator.version }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: text, encoding: 'utf8', cwd: `${__dirname}/../..` });
  if (run.status !== 0) throw new Error(`validator failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { valid: boolean; errors?: unknown };
};

describe('docs/openapi.yaml', () => {
  test('documents exactly the routes of the route table (method and path, both ways)', () => {
    expect(documentedRoutes().sort()).toEqual(REST_ROUTES.map(routeKeyOf).sort());
  });

  test('is a valid OpenAPI 3.1 document', () => {
    const { readFileSync } = require('node:fs') as typeof import('node:fs');
    const text = readFileSync(OPENAPI_PATH, 'utf8');
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = validateDocument(text);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    // The validator does catch a broken document.
    expect(validateDocument(text.replace(/^info:/m, 'inf0:')).valid).toBe(false);
  });

  test('every path parameter of a template is declared, as a CC1 integer id', () => {
    for (const { path, op, pathParams } of operations()) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = [...pathParams, ...(op.parameters ?? [])].map(deref).filter((p) => p.in === 'path');
      expect(declared.map((p) => p.name).sort()).toEqual([...names].sort());
      for (const p of declared) {
        expect(p.required).toBe(true);
        expect(deref(p.schema).pattern).toBe('^[1-9][0-9]{0,14}$');
      }
    }
  });

  test('lists take limit, nextToken and the state and vmId filters; the admin list userId and includeRevoked', () => {
    const queryOf = (path: string) => (doc.paths[path].get.parameters as any[]).map(deref).filter((p) => p.in === 'query').map((p) => p.name).sort();
    expect(queryOf('/storage-images')).toEqual(['limit', 'nextToken', 'state', 'vmId']);
    expect(queryOf('/admin/storage-images')).toEqual(['includeRevoked', 'limit', 'nextToken', 'state', 'userId', 'vmId']);
  });

  test('every write takes the Idempotency-Key header; reads do not', () => {
    for (const { method, path, op } of operations()) {
      const headers = ((op.parameters ?? []) as any[]).map(deref).filter((p) => p.in === 'header').map((p) => p.name);
      expect({ route: `${method} ${path}`, idempotent: headers.includes('Idempotency-Key') }).toEqual({
        route: `${method} ${path}`,
        idempotent: method !== 'GET',
      });
    }
  });

  test('every operation is behind the bearer JWT and documents 401 and its success reply', () => {
    expect(doc.security).toEqual([{ bearerJwt: [] }]);
    expect(doc.components.securitySchemes.bearerJwt).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const { method, path, op } of operations()) {
      expect(op.security).toBeUndefined();
      expect(Object.keys(op.responses)).toContain('401');
      const success = method === 'POST' && path === '/storage-images' ? '201' : '200';
      expect({ route: `${method} ${path}`, success: Object.keys(op.responses).filter((s) => s.startsWith('2')) }).toEqual({
        route: `${method} ${path}`,
        success: [success],
      });
    }
  });

  test('the error code enum is the domain ERROR_CODES (and internal), with the right statuses', () => {
    expect([...doc.components.schemas.ErrorCode.enum].sort()).toEqual([...Object.keys(ERROR_CODES), 'internal'].sort());
    // Each documented status of an operation is one an error code has (or 401 from the authorizer).
    const statuses = new Set<number>(Object.values(ERROR_CODES));
    for (const { op } of operations()) {
      for (const status of Object.keys(op.responses).filter((s) => !s.startsWith('2'))) expect(statuses.has(Number(status))).toBe(true);
    }
  });

  test('catalogue enums are the domain catalogues', () => {
    const s = doc.components.schemas;
    expect(s.DiskControllerName.enum).toEqual(DISK_CONTROLLERS.map((c) => c.name));
    expect(s.FilesystemName.enum).toEqual(FILESYSTEMS.map((f) => f.name));
    expect(s.ImageState.enum).toEqual(IMAGE_STATES.map((i) => i.name));
  });

  describe('schemas against the code', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(doc, 'openapi.yaml');
    const schema = (name: string) => ajv.getSchema(`openapi.yaml#/components/schemas/${name}`)!;

    test('the Image schema fits the views the service builds (detached and attached)', () => {
      const image = { imageId: 7, userId: 42, name: 'data', description: '', diskController: 'virtio', filesystem: 'ext4', sizeMb: 10, creationDate: '2026-01-01T00:00:00.000Z' } as const;
      const views = [
        toImageView({ status: 'adding', image }, 1),
        toImageView({ status: 'ok', image, attachment: { phase: 'attached', vmId: 9, diskDev: 'vdb', mode: 'hot', attachId: 'image-7@3', since: image.creationDate } }, 4),
        toImageView({ status: 'locked', image }, 5),
      ];
      for (const view of views) {
        expect(schema('Image')(view)).toBe(true);
        expect(Object.keys(view!).sort()).toEqual([...doc.components.schemas.Image.required].sort());
      }
      expect(schema('Image')({ ...views[0], extra: 1 })).toBe(false);
    });

    /** Runs a route with deps that stop at first use: a body the route accepts reaches them. */
    const bodyAccepted = async (method: string, path: string, body: unknown): Promise<boolean | string> => {
      const route = ROUTES.find((r) => r.method === method && r.path === path)!;
      const reached = new Error('deps reached');
      const deps = new Proxy({}, { get: () => { throw reached; } }) as RouteRequest['deps'];
      try {
        await route.run({ caller: { userId: 42, isAdmin: true, isPortal: true }, params: { id: '1', vmId: '5', userId: '7' }, query: {}, body, deps });
        return true;
      } catch (error) {
        if (error === reached) return true;
        if (error instanceof DomainError) return error.code;
        throw error;
      }
    };

    const bodies: Array<[string, string, string, unknown]> = [
      ['POST', '/storage-images', 'CreateBody', { name: 'data', description: 'd', diskController: 'virtio', filesystem: 'ext4', sizeMb: 10 }],
      ['POST', '/storage-images', 'CreateBody', { name: 'data', diskController: 'scsi', sizeMb: 1 }],
      ['PATCH', '/storage-images/{id}', 'EditBody', { name: 'n', description: '', diskController: 'ide' }],
      ['PATCH', '/storage-images/{id}', 'EditBody', {}],
      ['POST', '/storage-images/{id}/attach', 'AttachBody', { vmId: 5 }],
      ['POST', '/storage-images/{id}/detach', 'DetachBody', { vmId: 5 }],
      ['POST', '/storage-images/{id}/detach', 'DetachBody', {}],
      ['POST', '/admin/storage-images/{id}/detach', 'DetachBody', {}],
      ['POST', '/storage-images/{id}/resize', 'ResizeBody', { sizeMb: 20 }],
      ['PUT', '/admin/users/{userId}/quota', 'QuotaBody', { limitMb: 500 }],
      ['PUT', '/admin/users/{userId}/quota', 'QuotaBody', { limitMb: null }],
      ['POST', '/vms/{vmId}/disks', 'BootDisksBody', { userId: 42, storageImageIds: [1, 2] }],
    ];

    test.each(bodies)('%s %s: a documented %s body is accepted by the route, an extra field refused by both', async (method, path, name, body) => {
      const op = doc.paths[path][method.toLowerCase()];
      expect(op.requestBody.content['application/json'].schema.$ref).toBe(`#/components/schemas/${name}`);
      expect(schema(name)(body)).toBe(true);
      await expect(bodyAccepted(method, path, body)).resolves.toBe(true);
      const extra = { ...(body as object), surprise: 1 };
      expect(schema(name)(extra)).toBe(false);
      await expect(bodyAccepted(method, path, extra)).resolves.toBe('validation');
    });

    test('bodies both refuse: wrong types, unknown controller, size 0 (image_invalid_size)', async () => {
      const create = { name: 'x', diskController: 'virtio', sizeMb: 1 };
      for (const bad of [{ ...create, sizeMb: 0 }, { ...create, diskController: 'floppy' }, { ...create, sizeMb: '10' }, { name: 'x', sizeMb: 1 }]) {
        expect(schema('CreateBody')(bad)).toBe(false);
        await expect(bodyAccepted('POST', '/storage-images', bad)).resolves.toMatch(/^(validation|image_invalid_size)$/);
      }
      await expect(bodyAccepted('POST', '/storage-images', { ...create, sizeMb: 0 })).resolves.toBe('image_invalid_size');
      expect(schema('AttachBody')({ vmId: 0 })).toBe(false);
      await expect(bodyAccepted('POST', '/storage-images/{id}/attach', { vmId: 0 })).resolves.toBe('validation');
      expect(schema('BootDisksBody')({ userId: 42, storageImageIds: [] })).toBe(false);
      await expect(bodyAccepted('POST', '/vms/{vmId}/disks', { userId: 42, storageImageIds: [] })).resolves.toBe('validation');
    });

    test('catalogue replies of the handler fit their schemas', async () => {
      // GET /filesystems asks the storage host for its tools: one that has mkfs.ext4 only.
      const storage = { storageIds: ['default'], mkfsTools: async () => ['mkfs.ext4'] } as unknown as StorageHost;
      const deps = { storage } as RouteRequest['deps'];
      for (const [path, name] of [['/disk-controllers', 'DiskControllerList'], ['/filesystems', 'FilesystemList']] as const) {
        const route = ROUTES.find((r) => r.method === 'GET' && r.path === path)!;
        const reply = await route.run({ caller: { userId: 1, isAdmin: false, isPortal: false }, params: {}, query: {}, body: undefined, deps });
        expect(schema(name)(reply.body)).toBe(true);
      }
    });
  });
});
