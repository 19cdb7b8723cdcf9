/** Reads: an image (exact, from its stream head), its history (paged), a user's list, the admin's list. */
import { fail } from '../domain/errors';
import { checkReadAccess } from '../domain/policies';
import { streamIdOf, type Actor } from '../domain/storageImage';
import { viewOf, type ServiceDeps } from './service';
import type { ImageView, ListFilter, Page, StoredEvent } from './storePorts';

/** Exact: reads the stream head, so a write acknowledged before is always seen. */
export const getImage = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const { version, state } = await deps.events.load(streamIdOf(imageId));
  checkReadAccess(state, actor);
  return viewOf(state, version);
};

export const HISTORY_PAGE_MAX = 1000;

/** A page of the image's events, oldest first; `nextToken` is the version to go on from. */
export const getHistory = async (
  deps: ServiceDeps,
  imageId: number,
  actor: Actor,
  page: { limit?: number; nextToken?: string } = {},
): Promise<{ items: StoredEvent[]; nextToken?: string }> => {
  const streamId = streamIdOf(imageId);
  checkReadAccess((await deps.events.load(streamId)).state, actor);
  const fromVersion = page.nextToken === undefined ? 1 : Number(page.nextToken);
  if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) fail('validation', 'nextToken is not valid here.');
  const limit = Math.min(Math.max(Math.trunc(page.limit ?? HISTORY_PAGE_MAX) || 1, 1), HISTORY_PAGE_MAX);
  const { events, nextVersion } = await deps.events.readStream(streamId, { fromVersion, limit });
  return nextVersion ? { items: events, nextToken: String(nextVersion) } : { items: events };
};

/** The user's images that are not revoked, narrowed by `filter` (a revoked image is gone for its owner: `state=locked` lists none). */
export const listImages = (deps: ServiceDeps, userId: number, page: { limit: number; nextToken?: string }, filter: ListFilter = {}): Promise<Page<ImageView>> =>
  deps.readModel.listByOwner(userId, { ...page, ...filter, includeRevoked: false });

/**
 * Everyone's images, or one user's, narrowed by `filter`; revoked ones only when asked
 * (`includeRevoked`, or a filter on state `locked`, which names them).
 */
export const listAllImages = (
  deps: ServiceDeps,
  page: { limit: number; nextToken?: string },
  options: ListFilter & { userId?: number; includeRevoked: boolean },
): Promise<Page<ImageView>> => {
  const { userId, ...rest } = options;
  const list = { ...page, ...rest, includeRevoked: rest.includeRevoked || rest.state === 'locked' };
  return userId !== undefined ? deps.readModel.listByOwner(userId, list) : deps.readModel.listAll(list);
};
