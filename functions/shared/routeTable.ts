/**
 * Every route of the two HTTP APIs (SPEC 4.1 and 4.2), written once. The stack makes
 * one API Gateway route of each (infra/), the handlers route with them (restApi: a
 * handler per route key, checked by the compiler; cc1Api: a function per CC1 name),
 * and the tests check docs/openapi.yaml and the template against this table.
 * There is no catch-all route: a path not listed here is a 404 from API Gateway.
 */
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export interface RouteDef {
  method: Method;
  /** API Gateway style: /storage-images/{id} */
  path: string;
}

/** SPEC 4.1: the REST API, served by functions/restApi. */
export const REST_ROUTES = [
  { method: 'POST', path: '/storage-images' },
  { method: 'GET', path: '/storage-images' },
  { method: 'GET', path: '/storage-images/{id}' },
  { method: 'PATCH', path: '/storage-images/{id}' },
  { method: 'DELETE', path: '/storage-images/{id}' },
  { method: 'GET', path: '/storage-images/{id}/history' },
  { method: 'POST', path: '/storage-images/{id}/attach' },
  { method: 'POST', path: '/storage-images/{id}/detach' },
  { method: 'POST', path: '/storage-images/{id}/resize' },
  { method: 'GET', path: '/disk-controllers' },
  { method: 'GET', path: '/filesystems' },
  { method: 'GET', path: '/admin/storage-images' },
  { method: 'GET', path: '/admin/storage-images/{id}' },
  { method: 'DELETE', path: '/admin/storage-images/{id}' },
  { method: 'GET', path: '/admin/storage-images/{id}/history' },
  { method: 'POST', path: '/admin/storage-images/{id}/detach' },
  { method: 'POST', path: '/admin/storage-images/{id}/retry' },
  { method: 'GET', path: '/quota' },
  { method: 'GET', path: '/admin/users/{userId}/quota' },
  { method: 'PUT', path: '/admin/users/{userId}/quota' },
  { method: 'POST', path: '/vms/{vmId}/disks' },
  { method: 'GET', path: '/vms/{vmId}/disks' },
] as const satisfies readonly RouteDef[];

type KeyOf<R> = R extends { method: infer M extends string; path: infer P extends string } ? `${M} ${P}` : never;
/** `POST /storage-images`: API Gateway's route key, and the key of each REST handler. */
export type RestRouteKey = KeyOf<(typeof REST_ROUTES)[number]>;

export const routeKeyOf = (route: RouteDef): string => `${route.method} ${route.path}`;

/**
 * SPEC 4.2: CC1's own functions, one explicit route each. CC1's URLs end with a slash
 * (`/user/storage_image/create/`), but an HTTP API route key cannot end with one; API
 * Gateway routes `/x/` to the route `/x`, so the portals' URLs reach these routes unchanged.
 */
export const CC1_USER_FUNCTIONS = [
  'create',
  'get_list',
  'get_by_id',
  'delete',
  'edit',
  'attach',
  'detach',
  'get_disk_controllers',
  'get_filesystems',
] as const;
export const CC1_ADMIN_FUNCTIONS = ['get_list', 'get_by_id', 'delete', 'edit'] as const;
/**
 * CC1's `user/user/<fn>/` functions answered here: only `check_quota`, whose storage part
 * the portal's "Create new disk" dialog reads for its free-space line (CC1's
 * src/wi/views/user/storage_image.py). The rest of CC1's user module is the CLM's and
 * the VM side's.
 */
export const CC1_USER_ACCOUNT_FUNCTIONS = ['check_quota'] as const;
export type Cc1UserFunction = (typeof CC1_USER_FUNCTIONS)[number];
export type Cc1AdminFunction = (typeof CC1_ADMIN_FUNCTIONS)[number];
export type Cc1UserAccountFunction = (typeof CC1_USER_ACCOUNT_FUNCTIONS)[number];

export interface Cc1RouteDef extends RouteDef {
  method: 'POST';
  scope: 'user' | 'admin_cm';
  /** CC1's view module: `storage_image`, or `user` (the account functions). */
  module: 'storage_image' | 'user';
  fn: string;
}

export const CC1_ROUTES: readonly Cc1RouteDef[] = [
  ...CC1_USER_FUNCTIONS.map((fn) => ({ method: 'POST' as const, scope: 'user' as const, module: 'storage_image' as const, fn, path: `/user/storage_image/${fn}` })),
  ...CC1_ADMIN_FUNCTIONS.map((fn) => ({ method: 'POST' as const, scope: 'admin_cm' as const, module: 'storage_image' as const, fn, path: `/admin_cm/storage_image/${fn}` })),
  ...CC1_USER_ACCOUNT_FUNCTIONS.map((fn) => ({ method: 'POST' as const, scope: 'user' as const, module: 'user' as const, fn, path: `/user/user/${fn}` })),
];
