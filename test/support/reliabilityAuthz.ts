/**
 * The authorization matrix of issue 8, as data: every route of both APIs x every kind
 * of caller, with the expected answer of each cell. test/int/reliability-authz runs
 * it against the local HTTP server, and renders the markdown table that
 * docs/reliability.md carries (`npm run`-free: `UPDATE_RELIABILITY_DOCS=1 npx jest
 * test/int/reliability-authz` rewrites the docs table; otherwise the test fails when
 * the docs and this table disagree).
 *
 * Expectations come from the SPEC (4.1, 4.2) and the route code:
 * - no token, an expired one or one with a wrong signature: 401 before any handler;
 * - the user routes act as the caller's own user: an admin or a portal service there is
 *   just another user (admin powers live under /admin, CC1's under /admin_cm);
 * - a portal service may act for any `caller_id` on the CC1 API (the portal column
 *   sends the owner's caller_id), and may record boot-time disks (POST /vms/{vmId}/disks);
 * - reaching another user's image answers 403 image_permission, another user's VM 404
 *   vm_get (attach checks the VM first), without the image's data.
 */

export const CALLERS = ['none', 'expired', 'badSig', 'other', 'owner', 'portal', 'admin'] as const;
export type Who = (typeof CALLERS)[number];

export const CALLER_TITLES: Record<Who, string> = {
  none: 'no token',
  expired: 'expired token',
  badSig: 'wrong signature',
  other: 'other user',
  owner: 'owner',
  portal: 'portal service',
  admin: 'admin',
};

/**
 * What a cell needs: `image` (the owner's ready image), `attached` (the owner's image
 * attached at boot to the owner's stopped VM), `bootVm` (a fresh stopped VM of the owner).
 * Cells of a mutating row get their own fixture.
 */
export interface Fixture {
  imageId: number;
  attachedId: number;
  /** The owner's stopped VM holding `attachedId`. */
  stoppedVmId: number;
  /** A fresh stopped VM of the owner, no disks. */
  bootVmId: number;
  /** The owner's running VM. */
  runningVmId: number;
}

export interface Ids {
  owner: number;
  other: number;
  portal: number;
  admin: number;
}

export interface CellRequest {
  method: string;
  path: string;
  body?: unknown;
}

export interface MatrixRow {
  api: 'REST' | 'CC1';
  route: string;
  /** Changes state when it succeeds: each cell gets a fresh fixture. */
  mutates: boolean;
  request: (f: Fixture, who: Who, ids: Ids) => CellRequest;
  /** REST: `status[ code]`; CC1: `200 <status>` (always HTTP 200) or `401`. */
  expect: Record<Who, string>;
}

const UNAUTH = { none: '401', expired: '401', badSig: '401' } as const;

/** A user route on the owner's image: only the owner gets through; everyone else is just another user. */
const ownerOnly = (ok: string, refusal = '403 image_permission') => ({ ...UNAUTH, other: refusal, owner: ok, portal: refusal, admin: refusal });
const adminOnly = (ok: string) => ({ ...UNAUTH, other: '403 admin_required', owner: '403 admin_required', portal: '403 admin_required', admin: ok });
const anyone = (ok: string) => ({ ...UNAUTH, other: ok, owner: ok, portal: ok, admin: ok });

/** The CC1 caller_id each column sends: its own user id, except the portal acting for the owner. */
export const callerIdOf = (who: Who, ids: Ids): number =>
  who === 'other' ? ids.other : who === 'admin' ? ids.admin : ids.owner;

const cc1 = (fn: string, extra: (f: Fixture) => Record<string, unknown> = () => ({}), prefix = 'user') => (f: Fixture, who: Who, ids: Ids) => ({
  method: 'POST',
  path: `/${prefix}/storage_image/${fn}/`,
  body: { caller_id: callerIdOf(who, ids), ...extra(f) },
});

const CREATE = { name: 'matrix disk', diskController: 'virtio', sizeMb: 1 };
const CC1_CREATE = { name: 'matrix disk', disk_controller: 1, size: 1 };

export const MATRIX: MatrixRow[] = [
  // ---- REST (SPEC 4.1)
  { api: 'REST', route: 'POST /storage-images', mutates: false, request: () => ({ method: 'POST', path: '/storage-images', body: CREATE }), expect: anyone('201') },
  { api: 'REST', route: 'GET /storage-images', mutates: false, request: () => ({ method: 'GET', path: '/storage-images' }), expect: anyone('200') },
  { api: 'REST', route: 'GET /storage-images/{id}', mutates: false, request: (f) => ({ method: 'GET', path: `/storage-images/${f.imageId}` }), expect: ownerOnly('200') },
  { api: 'REST', route: 'GET /storage-images/{id}/history', mutates: false, request: (f) => ({ method: 'GET', path: `/storage-images/${f.imageId}/history` }), expect: ownerOnly('200') },
  { api: 'REST', route: 'PATCH /storage-images/{id}', mutates: true, request: (f) => ({ method: 'PATCH', path: `/storage-images/${f.imageId}`, body: { name: 'renamed' } }), expect: ownerOnly('200') },
  {
    api: 'REST',
    route: 'POST /storage-images/{id}/attach',
    mutates: true,
    request: (f) => ({ method: 'POST', path: `/storage-images/${f.imageId}/attach`, body: { vmId: f.runningVmId } }),
    // The VM is checked first: it is not theirs.
    expect: ownerOnly('200', '404 vm_get'),
  },
  { api: 'REST', route: 'POST /storage-images/{id}/detach', mutates: true, request: (f) => ({ method: 'POST', path: `/storage-images/${f.attachedId}/detach`, body: {} }), expect: ownerOnly('200') },
  { api: 'REST', route: 'DELETE /storage-images/{id}', mutates: true, request: (f) => ({ method: 'DELETE', path: `/storage-images/${f.imageId}` }), expect: ownerOnly('200') },
  { api: 'REST', route: 'GET /disk-controllers', mutates: false, request: () => ({ method: 'GET', path: '/disk-controllers' }), expect: anyone('200') },
  { api: 'REST', route: 'GET /filesystems', mutates: false, request: () => ({ method: 'GET', path: '/filesystems' }), expect: anyone('200') },
  { api: 'REST', route: 'GET /admin/storage-images', mutates: false, request: () => ({ method: 'GET', path: '/admin/storage-images' }), expect: adminOnly('200') },
  { api: 'REST', route: 'GET /admin/storage-images/{id}', mutates: false, request: (f) => ({ method: 'GET', path: `/admin/storage-images/${f.imageId}` }), expect: adminOnly('200') },
  {
    api: 'REST',
    route: 'POST /storage-images/{id}/resize',
    mutates: true,
    request: (f) => ({ method: 'POST', path: `/storage-images/${f.imageId}/resize`, body: { sizeMb: 2 } }),
    expect: ownerOnly('200'),
  },
  { api: 'REST', route: 'GET /quota', mutates: false, request: () => ({ method: 'GET', path: '/quota' }), expect: anyone('200') },
  { api: 'REST', route: 'GET /admin/users/{userId}/quota', mutates: false, request: (_f, _who, ids) => ({ method: 'GET', path: `/admin/users/${ids.owner}/quota` }), expect: adminOnly('200') },
  {
    api: 'REST',
    route: 'PUT /admin/users/{userId}/quota',
    mutates: true,
    request: (_f, _who, ids) => ({ method: 'PUT', path: `/admin/users/${ids.owner}/quota`, body: { limitMb: 100_000 } }),
    expect: adminOnly('200'),
  },
  // The fixture's image is ok: an admin gets through the permission check to the rule that only a failed or stuck disk is retried.
  { api: 'REST', route: 'POST /admin/storage-images/{id}/retry', mutates: true, request: (f) => ({ method: 'POST', path: `/admin/storage-images/${f.imageId}/retry` }), expect: adminOnly('409 image_retry') },
  { api: 'REST', route: 'GET /admin/storage-images/{id}/history', mutates: false, request: (f) => ({ method: 'GET', path: `/admin/storage-images/${f.imageId}/history` }), expect: adminOnly('200') },
  { api: 'REST', route: 'DELETE /admin/storage-images/{id}', mutates: true, request: (f) => ({ method: 'DELETE', path: `/admin/storage-images/${f.imageId}` }), expect: adminOnly('200') },
  {
    api: 'REST',
    route: 'POST /admin/storage-images/{id}/detach',
    mutates: true,
    request: (f) => ({ method: 'POST', path: `/admin/storage-images/${f.attachedId}/detach`, body: {} }),
    expect: adminOnly('200'),
  },
  {
    api: 'REST',
    route: 'POST /vms/{vmId}/disks',
    mutates: true,
    request: (f, _who, ids) => ({ method: 'POST', path: `/vms/${f.bootVmId}/disks`, body: { userId: ids.owner, storageImageIds: [f.imageId] } }),
    expect: { ...UNAUTH, other: '403 user_permission', owner: '403 user_permission', portal: '200', admin: '200' },
  },
  {
    api: 'REST',
    route: 'GET /vms/{vmId}/disks',
    mutates: false,
    request: (f) => ({ method: 'GET', path: `/vms/${f.stoppedVmId}/disks` }),
    expect: { ...UNAUTH, other: '404 vm_get', owner: '200', portal: '200', admin: '200' },
  },
  // ---- CC1 (SPEC 4.2): always HTTP 200 and CC1's status, but for the token itself
  { api: 'CC1', route: 'POST /user/storage_image/create/', mutates: false, request: cc1('create', () => CC1_CREATE), expect: anyone('200 ok') },
  { api: 'CC1', route: 'POST /user/storage_image/get_list/', mutates: false, request: cc1('get_list'), expect: anyone('200 ok') },
  ...(['get_by_id', 'edit', 'delete'] as const).map(
    (fn): MatrixRow => ({
      api: 'CC1',
      route: `POST /user/storage_image/${fn}/`,
      mutates: fn !== 'get_by_id',
      request: cc1(fn, (f) => ({ storage_image_id: f.imageId, ...(fn === 'edit' ? { name: 'renamed' } : {}) })),
      expect: { ...UNAUTH, other: '200 image_permission', owner: '200 ok', portal: '200 ok', admin: '200 image_permission' },
    }),
  ),
  {
    api: 'CC1',
    route: 'POST /user/storage_image/attach/',
    mutates: true,
    request: cc1('attach', (f) => ({ storage_image_id: f.imageId, vm_id: f.runningVmId })),
    expect: { ...UNAUTH, other: '200 vm_get', owner: '200 ok', portal: '200 ok', admin: '200 vm_get' },
  },
  {
    api: 'CC1',
    route: 'POST /user/storage_image/detach/',
    mutates: true,
    request: cc1('detach', (f) => ({ storage_image_id: f.attachedId })),
    expect: { ...UNAUTH, other: '200 image_permission', owner: '200 ok', portal: '200 ok', admin: '200 image_permission' },
  },
  { api: 'CC1', route: 'POST /user/storage_image/get_disk_controllers/', mutates: false, request: cc1('get_disk_controllers'), expect: anyone('200 ok') },
  { api: 'CC1', route: 'POST /user/storage_image/get_filesystems/', mutates: false, request: cc1('get_filesystems'), expect: anyone('200 ok') },
  ...(['get_list', 'get_by_id', 'edit', 'delete'] as const).map(
    (fn): MatrixRow => ({
      api: 'CC1',
      route: `POST /admin_cm/storage_image/${fn}/`,
      mutates: fn === 'edit' || fn === 'delete',
      request: cc1(fn, (f) => (fn === 'get_list' ? {} : { storage_image_id: f.imageId, ...(fn === 'edit' ? { name: 'renamed' } : {}) }), 'admin_cm'),
      expect: { ...UNAUTH, other: '200 user_permission', owner: '200 user_permission', portal: '200 user_permission', admin: '200 ok' },
    }),
  ),
  // Each caller asks its own quota (the portal the owner's, as it may).
  {
    api: 'CC1',
    route: 'POST /user/user/check_quota/',
    mutates: false,
    request: (_f, who, ids) => ({ method: 'POST', path: '/user/user/check_quota/', body: { caller_id: callerIdOf(who, ids) } }),
    expect: anyone('200 ok'),
  },
];

/**
 * Object-level authorization beyond the columns: one user naming another's image or
 * VM by id, and CC1 caller_id games. Each is one request by one caller.
 */
export interface CrossCase {
  title: string;
  who: Who;
  request: (f: Fixture & { otherImageId: number; otherVmId: number }, ids: Ids) => CellRequest;
  expect: string;
}

export const CROSS: CrossCase[] = [
  {
    title: "other user attaches the owner's image to their own running VM",
    who: 'other',
    request: (f) => ({ method: 'POST', path: `/storage-images/${f.imageId}/attach`, body: { vmId: f.otherVmId } }),
    expect: '403 image_permission',
  },
  {
    title: "owner attaches their image to the other user's running VM",
    who: 'owner',
    request: (f) => ({ method: 'POST', path: `/storage-images/${f.imageId}/attach`, body: { vmId: f.otherVmId } }),
    expect: '404 vm_get',
  },
  {
    title: "owner detaches the other user's image, naming their own VM",
    who: 'owner',
    request: (f) => ({ method: 'POST', path: `/storage-images/${f.otherImageId}/detach`, body: { vmId: f.stoppedVmId } }),
    expect: '403 image_permission',
  },
  { title: "owner reads the other user's VM disks", who: 'owner', request: (f) => ({ method: 'GET', path: `/vms/${f.otherVmId}/disks` }), expect: '404 vm_get' },
  {
    title: "portal records the owner's image on the other user's VM",
    who: 'portal',
    request: (f, ids) => ({ method: 'POST', path: `/vms/${f.otherVmId}/disks`, body: { userId: ids.owner, storageImageIds: [f.imageId] } }),
    expect: '404 vm_get',
  },
  {
    title: "portal records the other user's image on the owner's VM",
    who: 'portal',
    request: (f, ids) => ({ method: 'POST', path: `/vms/${f.bootVmId}/disks`, body: { userId: ids.owner, storageImageIds: [f.otherImageId] } }),
    expect: '403 image_permission',
  },
  {
    title: 'CC1: owner token with the other user as caller_id (get_list)',
    who: 'owner',
    request: (_f, ids) => ({ method: 'POST', path: '/user/storage_image/get_list/', body: { caller_id: ids.other } }),
    expect: '200 user_permission',
  },
  {
    title: "CC1: other user's token with the owner as caller_id (get_by_id)",
    who: 'other',
    request: (f, ids) => ({ method: 'POST', path: '/user/storage_image/get_by_id/', body: { caller_id: ids.owner, storage_image_id: f.imageId } }),
    expect: '200 user_permission',
  },
  {
    title: "CC1: other user asks for the owner's image with their own caller_id (attach to own VM)",
    who: 'other',
    request: (f, ids) => ({ method: 'POST', path: '/user/storage_image/attach/', body: { caller_id: ids.other, storage_image_id: f.imageId, vm_id: f.otherVmId } }),
    expect: '200 image_permission',
  },
  {
    title: 'CC1: admin_cm with a caller_id that is not the admin',
    who: 'admin',
    request: (f, ids) => ({ method: 'POST', path: '/admin_cm/storage_image/get_by_id/', body: { caller_id: ids.owner, storage_image_id: f.imageId } }),
    expect: '200 user_permission',
  },
  {
    title: 'CC1: portal acting for the other user on the owner\'s image',
    who: 'portal',
    request: (f, ids) => ({ method: 'POST', path: '/user/storage_image/delete/', body: { caller_id: ids.other, storage_image_id: f.imageId } }),
    expect: '200 image_permission',
  },
  {
    title: "REST: other user's list does not show the owner's images (checked on the body)",
    who: 'other',
    request: () => ({ method: 'GET', path: '/storage-images' }),
    expect: '200',
  },
];

const cellText = (value: string): string => (value.includes(' ') ? `${value.replace(' ', ' `')}\`` : value);

/** The markdown table of MATRIX (and of CROSS) for docs/reliability.md. */
export const matrixMarkdown = (): string => {
  const header = `| API | Route | ${CALLERS.map((c) => CALLER_TITLES[c]).join(' | ')} |`;
  const rule = `|---|---|${CALLERS.map(() => '---').join('|')}|`;
  const rows = MATRIX.map((r) => `| ${r.api} | \`${r.route}\` | ${CALLERS.map((c) => cellText(r.expect[c])).join(' | ')} |`);
  const cross = [
    '',
    'Object-level cases (one user naming another\'s image or VM by id):',
    '',
    '| Caller | Attempt | Expected |',
    '|---|---|---|',
    ...CROSS.map((c) => `| ${CALLER_TITLES[c.who]} | ${c.title} | ${cellText(c.expect)} |`),
  ];
  return [header, rule, ...rows, ...cross].join('\n');
};

export const MATRIX_START = '<!-- authz-matrix:start (generated from test/support/reliabilityAuthz.ts) -->';
export const MATRIX_END = '<!-- authz-matrix:end -->';
