/**
 * The REST API of SPEC 4.1, route by route. Each route: check the input, name the
 * actor, call one use case, shape the reply. Which routes exist is the table in
 * functions/shared/routeTable.ts; the handler routes with @middy/http-router.
 */
import * as z from 'zod/mini';
import { filesystemAvailability } from '../../application/filesystemSupport';
import * as images from '../../application/storageImages';
import type { ServiceDeps } from '../../application/storageImages';
import type { StoredEvent } from '../../application/storePorts';
import { DISK_CONTROLLERS } from '../../domain/catalog';
import { DomainError } from '../../domain/errors';
import { DESCRIPTION_MAX, SIZE_MAX_MB } from '../../domain/storageImage';
import { QUOTA_MAX_MB } from '../../application/quotas';
import { requireAdmin, userActorOf, type Caller } from '../shared/identity';
import { controllerName, filesystemName, id, parseBody, parseBoolean, parseId, parseListFilter, parsePage } from '../shared/input';
import { REST_ROUTES, routeKeyOf, type RestRouteKey, type RouteDef } from '../shared/routeTable';

export interface RouteRequest {
  caller: Caller;
  params: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: unknown;
  deps: ServiceDeps;
  /** The request's scoped Idempotency-Key (functions/shared/http.ts RequestScope). */
  writeKey?: string;
}

export interface RouteReply {
  status: number;
  body: unknown;
}

export interface Route extends RouteDef {
  run: (request: RouteRequest) => Promise<RouteReply>;
}

const ok = (body: unknown): RouteReply => ({ status: 200, body });

// Bodies. `.strict()`: an unknown field is a mistake worth reporting, not ignoring.
const nameField = z.string();
const createBody = z.strictObject({
  name: nameField,
  description: z.optional(z.string().check(z.maxLength(DESCRIPTION_MAX * 2))), // counted in code points by the domain
  diskController: controllerName,
  filesystem: z.optional(filesystemName),
  sizeMb: z.int().check(z.minimum(1)),
});
const editBody = z.strictObject({ name: z.optional(nameField), description: z.optional(z.string()), diskController: z.optional(controllerName) });
const attachBody = z.strictObject({ vmId: id });
const detachBody = z.strictObject({ vmId: z.optional(id) });
const resizeBody = z.strictObject({ sizeMb: z.int().check(z.minimum(1), z.maximum(SIZE_MAX_MB)) });
const quotaBody = z.strictObject({ limitMb: z.nullable(z.int().check(z.minimum(0), z.maximum(QUOTA_MAX_MB))) });
const bootDisksBody = z.strictObject({
  userId: id,
  storageImageIds: z
    .array(id)
    .check(z.minLength(1), z.maxLength(64), z.refine((ids) => new Set(ids).size === ids.length, 'must not name an image twice')),
});

const imageId = (request: RouteRequest): number => parseId(request.params.id, 'id');
const userIdParam = (request: RouteRequest): number => parseId(request.params.userId, 'userId');

const historyOf = (page: { items: StoredEvent[]; nextToken?: string }) => ({
  items: page.items.map((e) => ({ type: e.type, version: e.version, time: e.time, cause: e.cause, data: e.data })),
  ...(page.nextToken ? { nextToken: page.nextToken } : {}),
});

/** The boot-time route is for the portal service that creates VMs, or an admin. */
const portalOrAdmin = (caller: Caller) => {
  if (!caller.isPortal && !caller.isAdmin) throw new DomainError('user_permission', 'This route is for the portal service or an administrator.');
  return caller.isAdmin ? ({ kind: 'admin', userId: caller.userId } as const) : ({ kind: 'portal', userId: caller.userId } as const);
};

/** One handler per route of the table (functions/shared/routeTable.ts): a route missing or extra here fails the type check. */
export const ROUTE_HANDLERS: Record<RestRouteKey, Route['run']> = {
  'POST /storage-images': async ({ caller, body, deps, writeKey }) => {
    const input = parseBody(createBody, body);
    const view = await images.createImage(
      deps,
      { ...input, description: input.description ?? '', filesystem: input.filesystem ?? 'raw' },
      { kind: 'user', userId: caller.userId },
      writeKey,
    );
    return { status: 201, body: view };
  },
  'GET /storage-images': async ({ caller, query, deps }) => ok(await images.listImages(deps, caller.userId, parsePage(query), parseListFilter(query))),
  'GET /storage-images/{id}': async (r) => ok(await images.getImage(r.deps, imageId(r), userActorOf(r.caller))),
  'GET /storage-images/{id}/history': async (r) => ok(historyOf(await images.getHistory(r.deps, imageId(r), userActorOf(r.caller), parsePage(r.query)))),
  'PATCH /storage-images/{id}': async (r) => ok(await images.editImage(r.deps, imageId(r), parseBody(editBody, r.body), userActorOf(r.caller))),
  'POST /storage-images/{id}/attach': async (r) => ok(await images.attachImage(r.deps, imageId(r), parseBody(attachBody, r.body).vmId, userActorOf(r.caller))),
  'POST /storage-images/{id}/detach': async (r) => ok(await images.detachImage(r.deps, imageId(r), parseBody(detachBody, r.body).vmId, userActorOf(r.caller))),
  'DELETE /storage-images/{id}': async (r) => ok(await images.revokeImage(r.deps, imageId(r), userActorOf(r.caller))),
  'GET /disk-controllers': async () => ok({ items: DISK_CONTROLLERS.map(({ id, name, liveAttach }) => ({ id, name, liveAttach })) }),
  'GET /filesystems': async ({ deps }) => ok({ items: await filesystemAvailability(deps.storage) }),
  'GET /admin/storage-images': async ({ caller, query, deps }) => {
    requireAdmin(caller);
    const includeRevoked = parseBoolean(query.includeRevoked, 'includeRevoked');
    const userId = query.userId !== undefined ? parseId(query.userId, 'userId') : undefined;
    return ok(await images.listAllImages(deps, parsePage(query), { ...parseListFilter(query), includeRevoked, ...(userId !== undefined ? { userId } : {}) }));
  },
  'GET /admin/storage-images/{id}': async (r) => ok(await images.getImage(r.deps, imageId(r), requireAdmin(r.caller))),
  'DELETE /admin/storage-images/{id}': async (r) => {
    const actor = requireAdmin(r.caller);
    const force = parseBoolean(r.query.force, 'force');
    return ok(await (force ? images.forceRevokeImage : images.revokeImage)(r.deps, imageId(r), actor));
  },
  // Any image's trail, a revoked one's too (checkReadAccess lets an admin read those).
  'GET /admin/storage-images/{id}/history': async (r) =>
    ok(historyOf(await images.getHistory(r.deps, imageId(r), requireAdmin(r.caller), parsePage(r.query)))),
  'POST /admin/storage-images/{id}/detach': async (r) => {
    const actor = requireAdmin(r.caller);
    const { vmId } = parseBody(detachBody, r.body);
    // force: in the records only (the host is dead), audited with reason `forced`.
    return ok(await (parseBoolean(r.query.force, 'force') ? images.forceDetachImage : images.detachImage)(r.deps, imageId(r), vmId, actor));
  },
  'POST /admin/storage-images/{id}/retry': async (r) => ok(await images.retryDiskFile(r.deps, imageId(r), requireAdmin(r.caller))),
  'POST /storage-images/{id}/resize': async (r) => ok(await images.resizeImage(r.deps, imageId(r), parseBody(resizeBody, r.body).sizeMb, userActorOf(r.caller))),
  'GET /quota': async ({ caller, deps }) => {
    const { limitMb, usedMb } = await images.quotaOf(deps, caller.userId);
    return ok({ limitMb, usedMb });
  },
  'GET /admin/users/{userId}/quota': async (r) => {
    requireAdmin(r.caller);
    return ok(await images.quotaOf(r.deps, userIdParam(r)));
  },
  'PUT /admin/users/{userId}/quota': async (r) => {
    const actor = requireAdmin(r.caller);
    const userId = userIdParam(r);
    return ok(await images.setQuota(r.deps, userId, parseBody(quotaBody, r.body).limitMb, actor));
  },
  'POST /vms/{vmId}/disks': async (r) => {
    const actor = portalOrAdmin(r.caller);
    const vmId = parseId(r.params.vmId, 'vmId');
    const input = parseBody(bootDisksBody, r.body);
    const items = await images.attachAtBoot(r.deps, vmId, input.userId, input.storageImageIds, actor);
    return ok({ items });
  },
  'GET /vms/{vmId}/disks': async (r) => {
    const vmId = parseId(r.params.vmId, 'vmId');
    const actor = r.caller.isAdmin || r.caller.isPortal ? portalOrAdmin(r.caller) : userActorOf(r.caller);
    return ok({ items: await images.bootDiskXml(r.deps, vmId, actor) });
  },
};

/** The route table with its handlers, in the table's order. */
export const ROUTES: Route[] = REST_ROUTES.map((route) => ({ ...route, run: ROUTE_HANDLERS[routeKeyOf(route) as RestRouteKey] }));
