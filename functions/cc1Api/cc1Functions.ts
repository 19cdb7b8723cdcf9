/**
 * The CC1-compatible API (SPEC 4.2): CC1's function names, parameter names, integer
 * ids and reply envelope, so the existing CC1 portals work unchanged. Every reply is
 * HTTP 200 with `{status, data}`; a refusal carries the CC1 error code in `status`.
 */
import * as z from 'zod/mini';
import { filesystemAvailability } from '../../application/filesystemSupport';
import * as images from '../../application/storageImages';
import type { ServiceDeps } from '../../application/storageImages';
import type { ImageView } from '../../application/storePorts';
import {
  DISK_CONTROLLERS,
  diskControllerById,
  diskControllerId,
  filesystemById,
  imageStateId,
  type DiskController,
  type ImageStateName,
} from '../../domain/catalog';
import { DomainError } from '../../domain/errors';
import type { Actor } from '../../domain/storageImage';
import type { Caller } from '../shared/identity';
import { id, parseBody } from '../shared/input';
import type { Cc1AdminFunction, Cc1UserAccountFunction, Cc1UserFunction } from '../shared/routeTable';

/**
 * CC1's date format (`json_convert` in CC1's src/cm/utils/decorators.py: `strftime("%d.%m.%Y, %H:%M:%S")`),
 * which its EC2 front end parses back (src/ec2/helpers/parse.py `parseClmDate`). In UTC.
 */
export const cc1Date = (iso: string): string => {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}.${two(d.getUTCMonth() + 1)}.${d.getUTCFullYear()}, ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
};

/** CC1's dict of a storage image. */
export const cc1ImageDict = (view: ImageView) => ({
  storage_image_id: view.id,
  image_id: view.id,
  user_id: view.userId,
  name: view.name,
  description: view.description,
  disk_controller: diskControllerId(view.diskController as DiskController),
  creation_date: cc1Date(view.creationDate),
  progress: view.progress,
  state: imageStateId(view.state as ImageStateName),
  size: view.sizeMb,
  disk_dev: view.diskDev ?? '',
  vm_id: view.vmId ?? '',
  vm_name: view.vmId === null ? '' : `vm-${view.vmId}`,
});

/**
 * An integer as CC1's CM took it: a JSON number, or a string of digits. Django's
 * `objects.get(pk="12")` and `int(...)` accepted both, and CC1's web interface sends ids
 * straight from the URL as strings (src/wi/utils/views.py), its EC2 front end too.
 */
export const CC1_INT_TEXT = /^\s*-?[0-9]{1,16}\s*$/;
const cc1Int = <T>(schema: z.ZodMiniType<T, number>) =>
  z.pipe(
    z.union([z.number(), z.pipe(z.string().check(z.regex(CC1_INT_TEXT, 'expected an integer')), z.transform((text: string) => Number(text.trim())))]),
    schema,
  );
const cc1Id = cc1Int(id);

const controllerId = z.pipe(
  cc1Int(z.int()).check(z.refine((v) => diskControllerById(v) !== undefined, 'unknown disk controller id')),
  z.transform((v: number) => diskControllerById(v)!),
);
const filesystemId = z.pipe(
  cc1Int(z.int()).check(z.refine((v) => filesystemById(v) !== undefined, 'unknown filesystem id')),
  z.transform((v: number) => filesystemById(v)!),
);

// CC1's views ignored parameters they did not know: loose objects.
const caller = { caller_id: cc1Id };
const oneImage = z.looseObject({ ...caller, storage_image_id: cc1Id });
const schemas = {
  create: z.looseObject({
    ...caller,
    name: z.string(),
    description: z.optional(z.string()),
    filesystem: z.optional(filesystemId),
    size: cc1Int(z.int().check(z.minimum(1))),
    disk_controller: controllerId,
  }),
  get_list: z.looseObject(caller),
  get_by_id: oneImage,
  delete: oneImage,
  edit: z.looseObject({ ...caller, storage_image_id: cc1Id, name: z.optional(z.string()), description: z.optional(z.string()), disk_controller: z.optional(controllerId) }),
  attach: z.looseObject({ ...caller, storage_image_id: cc1Id, vm_id: cc1Id }),
  detach: z.looseObject({ ...caller, storage_image_id: cc1Id, vm_id: z.optional(cc1Id) }),
  get_disk_controllers: z.looseObject(caller),
  get_filesystems: z.looseObject(caller),
  admin_get_list: z.looseObject({ ...caller, user_id: z.optional(cc1Id) }),
  check_quota: z.looseObject(caller),
};

export interface Cc1Request {
  caller: Caller;
  body: unknown;
  deps: ServiceDeps;
  /** The request's scoped Idempotency-Key (functions/shared/http.ts RequestScope). */
  writeKey?: string;
}

/**
 * The actor for `caller_id`: the token's own user, or anyone for a trusted portal
 * service. A mismatch is CC1's `user_permission`.
 */
const actorFor = (request: Cc1Request, callerId: number, admin = false): Actor => {
  if (admin) {
    if (!request.caller.isAdmin) throw new DomainError('user_permission', 'These functions need the admin group.');
    if (callerId !== request.caller.userId && !request.caller.isPortal) throw new DomainError('user_permission', 'caller_id is not the token subject.');
    return { kind: 'admin', userId: callerId };
  }
  if (request.caller.isPortal) return { kind: 'portal', userId: callerId };
  if (callerId !== request.caller.userId) throw new DomainError('user_permission', 'caller_id is not the token subject.');
  return { kind: 'user', userId: callerId };
};

/** Lists every page of a listing (CC1's get_list had no paging). */
const allPages = async (list: (token?: string) => Promise<{ items: ImageView[]; nextToken?: string }>): Promise<ImageView[]> => {
  const items: ImageView[] = [];
  let token: string | undefined;
  do {
    const page = await list(token);
    items.push(...page.items);
    token = page.nextToken;
  } while (token);
  return items;
};

export type Cc1Function = (request: Cc1Request) => Promise<unknown>;

/** get_by_id, delete and edit: the same in `user` and `admin_cm`, but for who may call. */
const imageFunctions = (admin: boolean): Record<'get_by_id' | 'delete' | 'edit', Cc1Function> => ({
  get_by_id: async (r) => {
    const p = parseBody(schemas.get_by_id, r.body);
    return cc1ImageDict(await images.getImage(r.deps, p.storage_image_id, actorFor(r, p.caller_id, admin)));
  },
  delete: async (r) => {
    const p = parseBody(schemas.delete, r.body);
    await images.revokeImage(r.deps, p.storage_image_id, actorFor(r, p.caller_id, admin));
    return null;
  },
  edit: async (r) => {
    const p = parseBody(schemas.edit, r.body);
    const changes = { name: p.name, description: p.description, diskController: p.disk_controller };
    await images.editImage(r.deps, p.storage_image_id, changes, actorFor(r, p.caller_id, admin));
    return null;
  },
});

export const USER_FUNCTIONS: Record<Cc1UserFunction, Cc1Function> = {
  create: async (r) => {
    const p = parseBody(schemas.create, r.body);
    const actor = actorFor(r, p.caller_id) as Actor & { userId: number };
    const view = await images.createImage(
      r.deps,
      { name: p.name, description: p.description ?? '', filesystem: p.filesystem ?? 'raw', sizeMb: p.size, diskController: p.disk_controller },
      actor,
      r.writeKey,
    );
    return cc1ImageDict(view);
  },
  get_list: async (r) => {
    const p = parseBody(schemas.get_list, r.body);
    actorFor(r, p.caller_id);
    const items = await allPages((nextToken) => images.listImages(r.deps, p.caller_id, { limit: 1000, ...(nextToken ? { nextToken } : {}) }));
    return items.map(cc1ImageDict);
  },
  ...imageFunctions(false),
  attach: async (r) => {
    const p = parseBody(schemas.attach, r.body);
    await images.attachImage(r.deps, p.storage_image_id, p.vm_id, actorFor(r, p.caller_id));
    return null;
  },
  detach: async (r) => {
    const p = parseBody(schemas.detach, r.body);
    await images.detachImage(r.deps, p.storage_image_id, p.vm_id, actorFor(r, p.caller_id));
    return null;
  },
  get_disk_controllers: async (r) => {
    actorFor(r, parseBody(schemas.get_disk_controllers, r.body).caller_id);
    return DISK_CONTROLLERS.map(({ id, name, liveAttach }) => ({ id, name, live_attach: liveAttach }));
  },
  get_filesystems: async (r) => {
    actorFor(r, parseBody(schemas.get_filesystems, r.body).caller_id);
    // CC1 returned its settings dict, name -> id, and portals offer every key. A flag
    // would break that shape, so the dict holds only what this deployment can make.
    const filesystems = await filesystemAvailability(r.deps.storage);
    return Object.fromEntries(filesystems.filter((f) => f.available).map(({ id, name }) => [name, id]));
  },
};

export const ADMIN_FUNCTIONS: Record<Cc1AdminFunction, Cc1Function> = {
  get_list: async (r) => {
    const p = parseBody(schemas.admin_get_list, r.body);
    actorFor(r, p.caller_id, true);
    const page = (nextToken?: string) => ({ limit: 1000, includeRevoked: false, ...(nextToken ? { nextToken } : {}) });
    const items = await allPages((t) => (p.user_id !== undefined ? r.deps.readModel.listByOwner(p.user_id, page(t)) : r.deps.readModel.listAll(page(t))));
    return items.map(cc1ImageDict);
  },
  ...imageFunctions(true),
};

/**
 * CC1's `user/user/check_quota/` (src/cm/views/user/user.py: `User.get(caller_id).long_dict`,
 * src/cm/models/user.py), its storage part only: `storage` (the limit, MB) and
 * `used_storage` (MB in use), from the quota ledger as `GET /quota` reads it. The portal's
 * "Create new disk" dialog shows `storage - used_storage` as the free space. CC1's CPU,
 * memory, public IP and points fields are left out: they belong to VMs and addresses,
 * which this service does not know, and a made-up 0 would be shown as a real limit
 * (docs/api.md).
 */
export const USER_ACCOUNT_FUNCTIONS: Record<Cc1UserAccountFunction, Cc1Function> = {
  check_quota: async (r) => {
    const p = parseBody(schemas.check_quota, r.body);
    actorFor(r, p.caller_id);
    const { limitMb, usedMb } = await images.quotaOf(r.deps, p.caller_id);
    return { user_id: p.caller_id, storage: limitMb, used_storage: usedMb };
  },
};
