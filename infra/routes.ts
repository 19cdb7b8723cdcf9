/**
 * Every route of the two APIs, as data (SPEC 4.1 and 4.2). The stack turns each into
 * an API Gateway route behind the JWT authorizer; there is no catch-all route, so a
 * path that is not listed here answers 404 from API Gateway without invoking anything.
 */
export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
export interface RouteDef {
  method: Method;
  path: string;
}

/** SPEC 4.1: the REST API, served by functions/restApi. */
export const REST_ROUTES: readonly RouteDef[] = [
  { method: 'POST', path: '/storage-images' },
  { method: 'GET', path: '/storage-images' },
  { method: 'GET', path: '/storage-images/{id}' },
  { method: 'PATCH', path: '/storage-images/{id}' },
  { method: 'DELETE', path: '/storage-images/{id}' },
  { method: 'GET', path: '/storage-images/{id}/history' },
  { method: 'POST', path: '/storage-images/{id}/attach' },
  { method: 'POST', path: '/storage-images/{id}/detach' },
  { method: 'GET', path: '/disk-controllers' },
  { method: 'GET', path: '/filesystems' },
  { method: 'GET', path: '/admin/storage-images' },
  { method: 'GET', path: '/admin/storage-images/{id}' },
  { method: 'DELETE', path: '/admin/storage-images/{id}' },
  { method: 'POST', path: '/admin/storage-images/{id}/detach' },
  { method: 'POST', path: '/vms/{vmId}/disks' },
  { method: 'GET', path: '/vms/{vmId}/disks' },
];

/**
 * SPEC 4.2: CC1's own functions, one explicit route each. CC1's URLs end with a slash
 * (`/user/storage_image/create/`), but an HTTP API route key cannot end with one; API
 * Gateway routes `/x/` to the route `/x`, so the portals' URLs reach these routes
 * unchanged. The handler sees routeKey `POST /user/storage_image/create` and a rawPath
 * with or without the slash.
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

export const CC1_ROUTES: readonly RouteDef[] = [
  ...CC1_USER_FUNCTIONS.map((fn) => ({ method: 'POST' as const, path: `/user/storage_image/${fn}` })),
  ...CC1_ADMIN_FUNCTIONS.map((fn) => ({ method: 'POST' as const, path: `/admin_cm/storage_image/${fn}` })),
];
