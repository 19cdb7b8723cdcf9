/**
 * Change notifications (SPEC 4.7): every change of an image's state or attachment is
 * published as a `Storage Image Change` (source `cc1.storage`), so portals subscribe
 * instead of polling. Which events change state or attachment is told by their type
 * (an Edited never does; an AttachRequested or AttachFailed is not shown as attached,
 * so the image as portals see it did not change). The detail is the image as it is
 * right after the event: its `version` orders the changes of one image, since the bus
 * does not keep order.
 */
import type { Cause, StorageImageEventType } from '../domain/storageImage';
import type { StoredEvent } from './storePorts';
import { toImageView } from './views';

export const CHANGE_EVENT_SOURCE = 'cc1.storage';
export const CHANGE_EVENT_DETAIL_TYPE = 'Storage Image Change';

/** The event types after which an image's state or attachment differs from before. */
export const STATE_OR_ATTACHMENT_CHANGES = [
  'StorageImageCreated', // -> adding
  'StorageImageDiskReady', // adding -> ok
  'StorageImageDiskFailed', // adding -> failed
  'StorageImageDiskRetried', // failed or stuck adding -> adding (an admin's retry)
  'StorageImageAttached', // vmId, diskDev set
  'StorageImageDetached', // vmId, diskDev cleared
  'StorageImageRevoked', // -> locked
] as const satisfies readonly StorageImageEventType[];

export interface StorageImageChange {
  imageId: number;
  userId: number;
  state: string; // CC1 state name
  vmId: number | null;
  diskDev: string | null;
  version: number;
  cause: Cause;
}

/** Where changes go: the EventBridge bus on AWS, a list in memory locally. Throws when not taken (the stream retries). */
export interface ChangePublisher {
  publish(change: StorageImageChange, time: string): Promise<void>;
}

const CHANGES: ReadonlySet<string> = new Set(STATE_OR_ATTACHMENT_CHANGES);

/** The change an event makes visible, or undefined when its state and attachment stay as they were. */
export const changeOf = (event: StoredEvent): StorageImageChange | undefined => {
  if (!CHANGES.has(event.type)) return undefined;
  const view = toImageView(event.stateAfter, event.version);
  if (!view) return undefined;
  return { imageId: view.id, userId: view.userId, state: view.state, vmId: view.vmId, diskDev: view.diskDev, version: event.version, cause: event.cause };
};

/** Publishes the change of one stored event, if it made one (safe to repeat: a redelivery publishes the same detail again). */
export const publishChangeOf = async (publisher: ChangePublisher, event: StoredEvent): Promise<boolean> => {
  const change = changeOf(event);
  if (!change) return false;
  await publisher.publish(change, event.time);
  return true;
};
