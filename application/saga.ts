/**
 * Host operations as sagas, all of one shape (SPEC 3; docs/event-store.md, "Host
 * operations"):
 * 1. the intent step reserves everything the operation will change (a device claim,
 *    quota growth) and pins an operation id in its event, before a host is asked;
 * 2. the host call;
 * 3. the outcome step, pinned to that id: a command naming another operation changes
 *    nothing. When the outcome is refused, the host change is undone before the caller
 *    is answered (or left to the reconciler, which the undo's failure is logged for).
 *
 * HOST_OPERATIONS is the one list of them: the reconciler's open-intent pass reads it,
 * and the crash table in docs/event-store.md is checked against it (saga.unit.test).
 */
import type { StorageImageEventType, StorageImageState } from '../domain/storageImage';
import { operationIdOf } from '../domain/storageImage';
import { DomainError } from '../domain/errors';
import type { OpenOperationRecord, StepEffects } from './storePorts';

export interface HostOperation {
  /** The event that opens it (absent: it reserves nothing, and is pinned to the attachment it ends). */
  intent?: StorageImageEventType;
  host: string;
  outcomes: readonly StorageImageEventType[];
  /** What the intent holds until the outcome. */
  reserves: string;
  /** When the outcome is refused. */
  undo: string;
  /** What the reconciler does with an intent left open (a crash between the steps). */
  reconciler: string;
  /** Tracked by an open-operation item (`op#<image>#<slot>`) the reconciler lists; attach and detach are found from the VM directory. */
  slot?: 'file' | 'resize' | 'removeFile';
}

export const HOST_OPERATIONS = {
  attach: {
    intent: 'StorageImageAttachRequested',
    host: 'virsh attach-disk (hypervisor)',
    outcomes: ['StorageImageAttached', 'StorageImageAttachFailed'],
    reserves: 'the device claim, naming the attach',
    undo: 'virsh detach-disk, then the claim is freed by AttachFailed',
    reconciler: 'domblklist shows the disk: Attached; else AttachFailed and the claim freed',
  },
  detach: {
    host: 'virsh detach-disk (hypervisor)',
    outcomes: ['StorageImageDetached'],
    reserves: 'nothing: it frees; pinned to the attach id it read',
    undo: 'none needed: a refused outcome means that attachment ended already',
    reconciler: 'Attached but not on the host: Detached for that attach id, claim freed',
  },
  resize: {
    intent: 'StorageImageResizeRequested',
    host: 'truncate (storage host) or virsh blockresize (hypervisor, live)',
    outcomes: ['StorageImageResized', 'StorageImageResizeFailed'],
    reserves: 'the quota growth, and the image (no attach, revoke or other resize meanwhile)',
    undo: 'none: a file never shrinks; the outcome is pinned and cannot be refused while the intent is open',
    reconciler: 'grows again (idempotent): Resized; the host refuses: ResizeFailed and the quota shrinks back',
    slot: 'resize',
  },
  createFile: {
    intent: 'StorageImageCreated',
    host: 'make the disk file (storage host)',
    outcomes: ['StorageImageDiskReady', 'StorageImageDiskFailed'],
    reserves: 'the quota of the new image',
    undo: 'none: a stale outcome (a retry began since) changes nothing; the retry makes the same file',
    reconciler: 'makes the file again (idempotent): DiskReady, or DiskFailed',
    slot: 'file',
  },
  retryFile: {
    intent: 'StorageImageDiskRetried',
    host: 'make the disk file again (storage host)',
    outcomes: ['StorageImageDiskReady', 'StorageImageDiskFailed'],
    reserves: 'the image (back to adding), quota kept from Created',
    undo: 'none: as createFile',
    reconciler: 'as createFile',
    slot: 'file',
  },
  removeFile: {
    intent: 'StorageImageRevoked',
    host: 'remove the disk file (storage host)',
    outcomes: ['StorageImageDiskFileRemoved'],
    reserves: 'nothing (the quota is released by the intent)',
    undo: 'none: removal is idempotent',
    reconciler: 'removes the file (a file gone already is a success): DiskFileRemoved',
    slot: 'removeFile',
  },
} as const satisfies Record<string, HostOperation>;

export type HostOperationName = keyof typeof HOST_OPERATIONS;
export type OperationSlot = NonNullable<HostOperation['slot']>;

/** The operation a state has open in `slot`, with its id and since when (undefined: none). */
export const openInSlot = (state: StorageImageState, slot: OperationSlot, imageId: number): { opId: string } | undefined => {
  if (slot === 'file' && state.status === 'adding') return { opId: state.fileOp ?? operationIdOf(imageId, 1) };
  if (slot === 'resize' && state.status === 'ok' && state.operation?.type === 'resize') return { opId: state.operation.opId };
  if (slot === 'removeFile' && state.status === 'locked' && !state.fileRemoved) return { opId: 'revoke' };
  return undefined;
};

const SLOTS: readonly OperationSlot[] = ['file', 'resize', 'removeFile'];

/**
 * The open-operation items a command step writes with its event: one is opened for each
 * slot the step opens, and removed for each it closes, in the same transaction, so the
 * reconciler's list is exactly the open intents (no crash leaves one out).
 */
export const operationEffects = (
  imageId: number,
  decided: { before: StorageImageState; after: StorageImageState },
  time: string,
): Pick<StepEffects, 'operations'> => {
  const open: OpenOperationRecord[] = [];
  const close: { imageId: number; slot: OperationSlot }[] = [];
  for (const slot of SLOTS) {
    const before = openInSlot(decided.before, slot, imageId);
    const after = openInSlot(decided.after, slot, imageId);
    if (after && after.opId !== before?.opId) open.push({ imageId, slot, opId: after.opId, since: time });
    else if (before && !after) close.push({ imageId, slot });
  }
  return open.length || close.length ? { operations: { open, close } } : {};
};

/**
 * Runs the host call and the outcome of an operation whose intent is committed. When
 * the host call fails, `failed` records it (and undoes what it may have done); when the
 * outcome is refused, `undo` reverts the host first, then the refusal is the answer.
 */
export const finishOperation = async <T>(steps: {
  host: () => Promise<void>;
  outcome: () => Promise<T>;
  failed: (error: unknown) => Promise<never>;
  undo?: () => Promise<void>;
  onUndoFailed?: (error: unknown) => void;
}): Promise<T> => {
  try {
    await steps.host();
  } catch (error) {
    return steps.failed(error);
  }
  try {
    return await steps.outcome();
  } catch (error) {
    if (steps.undo && error instanceof DomainError) {
      await steps.undo().catch((undoError: unknown) => steps.onUndoFailed?.(undoError));
    }
    throw error;
  }
};
