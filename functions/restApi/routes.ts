/**
 * The REST API of SPEC 4.1, route by route. Each route: check the input, name the
 * actor, call one use case, shape the reply. The route table is also read by the
 * local HTTP server and by the OpenAPI test.
 */
import { z } from 'zod';
import { filesystemAvailability } from '../../application/filesystemSupport';
import * as images from '../../application/storageImages';
import type { ServiceDeps } from '../../application/storageImages';
import type { StoredEvent } from '../../application/storePorts';
import { DISK_CONTROLLERS } from '../../domain/catalog';
import { DomainError } from '../../domain/errors';
import { DESCRIPTION_MAX } from '../../domain/storageImage';
import { requireAdmin, userActorOf, type Caller } from '../shared/identity';
import { controllerName, filesystemName, id, parseBody, parseBoolean, parseId, parsePage } from '../shared/input';

export interface RouteRequest {
  caller: Caller;
  params: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: unknown;
  deps: ServiceDeps;
}

export interface RouteReply {
  status: number;
  body: unknown;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string; // API Gateway style: /storage-images/{id}
  /** Runs virsh on a hypervisor host: only there is a timeout the host's (503 hypervisor_unavailable). */
  hypervisorWork?: true;
  run: (request: RouteRequest) => Promise<RouteReply>;
}

const ok = (body: unknown): RouteReply => ({ status: 200, body });

// Bodies. `.strict()`: an unknown field is a mistake worth reporting, not ignoring.
const nameField = z.string();
const createBody = z
  .object({
    name: nameField,
    description: z.string().max(DESCRIPTION_MAX * 2).optional(), // counted in code points by the domain
    diskController: controllerName,
    filesystem: filesystemName.optional(),
    sizeMb: z.number().int().min(1),
  })
  .strict();
const editBody = z
  .object({ name: nameField.optional(), description: z.string().optional(), diskController: controllerName.optional() })
  .strict();
const attachBody = z.object({ vmId: id }).strict();
const detachBody = z.object({ vmId: id.optional() }).strict();
const bootDisksBody = z
  .object({
    userId: id,
    storageImageIds: z
      .array(id)
      .min(1)
      .max(64)
      .refine((ids) => new Set(ids).size === ids.length, 'must not name an image twice'),
  })
  .strict();

const imageId = (request: RouteRequest): number => parseId(request.params.id, 'id');

const historyOf = (page: { items: StoredEvent[]; nextToken?: string }) => ({
  items: page.items.map((e) => ({ type: e.type, version: e.version, time: e.time, cause: e.cause, data: e.data })),
  ...(page.nextToken ? { nextToken: page.nextToken } : {}),
});

/** The boot-time route is for the portal service that creates VMs, or an admin. */
const portalOrAdmin = (caller: Caller) => {
  if (!caller.isPortal && !caller.isAdmin) throw new DomainError('user_permission', 'This route is for the portal service or an administrator.');
  return caller.isAdmin ? ({ kind: 'admin', userId: caller.userId } as const) : ({ kind: 'portal', userId: caller.userId } as const);
};

export const ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/storage-images',
    run: async ({ caller, body, deps }) => {
      const input = parseBody(createBody, body);
      const view = await images.createImage(
        deps,
        { ...input, description: input.description ?? '', filesystem: input.filesystem ?? 'raw' },
        { kind: 'user', userId: caller.userId },
      );
      return { status: 201, body: view };
    },
  },
  {
    method: 'GET',
    path: '/storage-images',
    run: async ({ caller, query, deps }) => ok(await images.listImages(deps, caller.userId, parsePage(query))),
  },
  {
    method: 'GET',
    path: '/storage-images/{id}',
    run: async (r) => ok(await images.getImage(r.deps, imageId(r), userActorOf(r.caller))),
  },
  {
    method: 'GET',
    path: '/storage-images/{id}/history',
    run: async (r) => ok(historyOf(await images.getHistory(r.deps, imageId(r), userActorOf(r.caller), parsePage(r.query)))),
  },
  {
    method: 'PATCH',
    path: '/storage-images/{id}',
    run: async (r) => ok(await images.editImage(r.deps, imageId(r), parseBody(editBody, r.body), userActorOf(r.caller))),
  },
  {
    method: 'POST',
    path: '/storage-images/{id}/attach',
    hypervisorWork: true,
    run: async (r) => ok(await images.attachImage(r.deps, imageId(r), parseBody(attachBody, r.body).vmId, userActorOf(r.caller))),
  },
  {
    method: 'POST',
    path: '/storage-images/{id}/detach',
    hypervisorWork: true,
    run: async (r) => ok(await images.detachImage(r.deps, imageId(r), parseBody(detachBody, r.body).vmId, userActorOf(r.caller))),
  },
  {
    method: 'DELETE',
    path: '/storage-images/{id}',
    run: async (r) => ok(await images.revokeImage(r.deps, imageId(r), userActorOf(r.caller))),
  },
  {
    method: 'GET',
    path: '/disk-controllers',
    run: async () => ok({ items: DISK_CONTROLLERS.map(({ id, name, liveAttach }) => ({ id, name, liveAttach })) }),
  },
  {
    method: 'GET',
    path: '/filesystems',
    run: async ({ deps }) => ok({ items: await filesystemAvailability(deps.storage) }),
  },
  {
    method: 'GET',
    path: '/admin/storage-images',
    run: async ({ caller, query, deps }) => {
      requireAdmin(caller);
      const page = parsePage(query);
      const includeRevoked = parseBoolean(query.includeRevoked, 'includeRevoked');
      const result =
        query.userId !== undefined
          ? await deps.readModel.listByOwner(parseId(query.userId, 'userId'), { ...page, includeRevoked })
          : await deps.readModel.listAll({ ...page, includeRevoked });
      return ok(result);
    },
  },
  {
    method: 'GET',
    path: '/admin/storage-images/{id}',
    run: async (r) => ok(await images.getImage(r.deps, imageId(r), requireAdmin(r.caller))),
  },
  {
    method: 'DELETE',
    path: '/admin/storage-images/{id}',
    run: async (r) => ok(await images.revokeImage(r.deps, imageId(r), requireAdmin(r.caller))),
  },
  {
    method: 'POST',
    path: '/admin/storage-images/{id}/detach',
    hypervisorWork: true,
    run: async (r) => {
      const actor = requireAdmin(r.caller);
      return ok(await images.detachImage(r.deps, imageId(r), parseBody(detachBody, r.body).vmId, actor));
    },
  },
  {
    method: 'POST',
    path: '/vms/{vmId}/disks',
    run: async (r) => {
      const actor = portalOrAdmin(r.caller);
      const vmId = parseId(r.params.vmId, 'vmId');
      const input = parseBody(bootDisksBody, r.body);
      const items = await images.attachAtBoot(r.deps, vmId, input.userId, input.storageImageIds, actor);
      return ok({ items });
    },
  },
  {
    method: 'GET',
    path: '/vms/{vmId}/disks',
    run: async (r) => {
      const vmId = parseId(r.params.vmId, 'vmId');
      const actor = r.caller.isAdmin || r.caller.isPortal ? portalOrAdmin(r.caller) : userActorOf(r.caller);
      return ok({ items: await images.bootDiskXml(r.deps, vmId, actor) });
    },
  },
];

/** `{id}`-style path templates as regular expressions, for servers that do not route. */
const compiled = ROUTES.map((route) => ({
  route,
  names: [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
  pattern: new RegExp(`^${route.path.replace(/\{\w+\}/g, '([^/]+)')}/?$`),
}));

/** A malformed escape (`%`, `%E0%A4%A`) stays as sent: the route's own check refuses it (400), never a URIError (500). */
const decodePathSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

export const routeKeyOf = (route: Route): string => `${route.method} ${route.path}`;

/** Finds the route for a method and path: the route, its params, or whether the path exists at all. */
export const matchRoute = (
  method: string,
  path: string,
): { route: Route; params: Record<string, string> } | { route: undefined; pathExists: boolean } => {
  let pathExists = false;
  for (const { route, names, pattern } of compiled) {
    const m = pattern.exec(path);
    if (!m) continue;
    pathExists = true;
    if (route.method !== method) continue;
    const params = Object.fromEntries(names.map((name, i) => [name, decodePathSegment(m[i + 1]!)]));
    return { route, params };
  }
  return { route: undefined, pathExists };
};

export const findRouteByKey = (routeKey: string): Route | undefined => ROUTES.find((r) => routeKeyOf(r) === routeKey);
