/**
 * A schema per event type (as castore's ZodEventType): an event item read back from the
 * log (load of a history, the stream, a rebuild) is checked against its type's schema,
 * so a damaged or foreign item is an error with its key named, never silently wrong data.
 * zod/mini keeps this out of the bundles' cold-start cost (docs/benchmarks.md, figure 6).
 */
import * as z from 'zod/mini';
import { DISK_CONTROLLERS, FILESYSTEMS } from '../../domain/catalog';
import type { StoredEvent } from '../../application/storePorts';

const id = z.int();
const controller = z.enum(DISK_CONTROLLERS.map((c) => c.name) as [string, ...string[]]);
const attachment = { vmId: id, diskDev: z.string(), attachId: z.optional(z.string()) };

/** The data of each event type; `StorageImageEventData` in domain/ is the same, as types. */
export const EVENT_DATA_SCHEMAS = {
  StorageImageCreated: z.object({
    imageId: id,
    userId: id,
    name: z.string(),
    description: z.string(),
    diskController: controller,
    filesystem: z.enum(FILESYSTEMS.map((f) => f.name) as [string, ...string[]]),
    sizeMb: id,
  }),
  StorageImageDiskReady: z.object({ storage: z.optional(z.string()), opId: z.optional(z.string()) }),
  StorageImageDiskFailed: z.object({ reason: z.string(), opId: z.optional(z.string()) }),
  StorageImageEdited: z.object({ name: z.optional(z.string()), description: z.optional(z.string()), diskController: z.optional(controller) }),
  StorageImageAttachRequested: z.object(attachment),
  StorageImageAttached: z.object({ ...attachment, mode: z.enum(['hot', 'boot']) }),
  StorageImageAttachFailed: z.object({ ...attachment, reason: z.string() }),
  StorageImageDetached: z.object(attachment),
  StorageImageRevoked: z.object({ forced: z.optional(z.boolean()) }),
  StorageImageDiskFileRemoved: z.object({}),
  StorageImageDiskRetried: z.object({ from: z.enum(['failed', 'adding']), opId: z.optional(z.string()) }),
  StorageImageResizeRequested: z.object({ opId: z.string(), fromMb: id, toMb: id }),
  StorageImageResized: z.object({ fromMb: id, toMb: id, opId: z.optional(z.string()) }),
  StorageImageResizeFailed: z.object({ opId: z.string(), fromMb: id, toMb: id, reason: z.string() }),
} as const;

const envelope = z.object({
  streamId: z.string().check(z.regex(/^image-[0-9]+$/)),
  version: z.int().check(z.positive()),
  type: z.enum(Object.keys(EVENT_DATA_SCHEMAS) as [keyof typeof EVENT_DATA_SCHEMAS, ...(keyof typeof EVENT_DATA_SCHEMAS)[]]),
  time: z.string(),
  cause: z.object({ kind: z.enum(['user', 'admin', 'portal', 'system']), userId: z.optional(id), reason: z.optional(z.string()) }),
  data: z.optional(z.record(z.string(), z.unknown())),
  stateAfter: z.object({ status: z.enum(['none', 'adding', 'failed', 'ok', 'locked']) }),
  correlationId: z.optional(z.string()),
});

export class BadEventItemError extends Error {
  constructor(key: string, problem: string) {
    super(`event item ${key} does not match its schema: ${problem}`);
    this.name = 'BadEventItemError';
  }
}

const problemOf = (error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string => {
  const issue = error.issues[0]!;
  return `${issue.path.map(String).join('.') || '(item)'}: ${issue.message}`;
};

/** An event item of the log as a StoredEvent, after checking it. */
export const parseStoredEvent = (item: Record<string, unknown>): StoredEvent => {
  const key = `${String(item.streamId)}@${String(item.version)}`;
  const head = envelope.safeParse(item);
  if (!head.success) throw new BadEventItemError(key, problemOf(head.error));
  const data = EVENT_DATA_SCHEMAS[head.data.type].safeParse(item.data ?? {});
  if (!data.success) throw new BadEventItemError(key, `data.${problemOf(data.error)}`);
  return {
    streamId: head.data.streamId,
    version: head.data.version,
    type: head.data.type,
    time: head.data.time,
    cause: head.data.cause,
    data: item.data ?? {},
    stateAfter: item.stateAfter,
    ...(head.data.correlationId ? { correlationId: head.data.correlationId } : {}),
  } as StoredEvent;
};
