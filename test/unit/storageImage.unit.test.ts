/**
 * The StorageImage decider, rule by rule (SPEC.md section 2 and the decider's own rules):
 * given these events, when this command, then these events (or this error).
 */
import { given } from '../support/deciderSpec';
import {
  DESCRIPTION_MAX,
  NAME_MAX,
  SIZE_MAX_MB,
  causeOf,
  cc1StateOf,
  decide,
  evolve,
  fold,
  initialState,
  streamIdOf,
  type Actor,
  type CommandContext,
  type NewEvent,
  type StorageImageCommand,
  type StorageImageEventData,
  type StorageImageState,
  type VmView,
} from '../../domain/storageImage';

// ---------------------------------------------------------------------------
// Fixtures

const NOW = '2026-11-26T10:00:00.000Z';
const LATER = '2026-11-26T10:05:00.000Z';
const OWNER = 7101;
const OTHER = 9;
const ADMIN = 1;
const VM = 5;

const ctx = (actor: Actor, now = NOW): CommandContext => ({ actor, now });
const asOwner = ctx({ kind: 'user', userId: OWNER });
const asStranger = ctx({ kind: 'user', userId: OTHER });
const asPortalForOwner = ctx({ kind: 'portal', userId: OWNER });
const asPortalForOther = ctx({ kind: 'portal', userId: OTHER });
const asAdmin = ctx({ kind: 'admin', userId: ADMIN });
const asSystem = ctx({ kind: 'system', reason: 'vm-stopped' });
const asDiskWorker = ctx({ kind: 'system', reason: 'disk-file' });
const asReconciler = ctx({ kind: 'system', reason: 'reconciled' });

const ownerCause = { kind: 'user' as const, userId: OWNER };
const adminCause = { kind: 'admin' as const, userId: ADMIN };
const portalCause = { kind: 'portal' as const, userId: OWNER };
const stopCause = { kind: 'system' as const, reason: 'vm-stopped' };
const diskCause = { kind: 'system' as const, reason: 'disk-file' };
const reconcilerCause = { kind: 'system' as const, reason: 'reconciled' };
/** The attach of the first request after OK (versions 1-2): `image-<id>@<version>`. */
const ATTACH = 'image-1@3';

const created = (over: Partial<StorageImageEventData['StorageImageCreated']> = {}): NewEvent => ({
  type: 'StorageImageCreated',
  data: { imageId: 1, userId: OWNER, name: 'data', description: '', diskController: 'virtio', filesystem: 'ext4', sizeMb: 100, ...over },
  time: NOW,
  cause: ownerCause,
});
const ready: NewEvent = { type: 'StorageImageDiskReady', data: {}, time: NOW, cause: { kind: 'system', reason: 'disk-file' } };
const diskFailed = (reason = 'mkfs failed'): NewEvent => ({
  type: 'StorageImageDiskFailed',
  data: { reason },
  time: NOW,
  cause: { kind: 'system', reason: 'disk-file' },
});
const edited = (data: StorageImageEventData['StorageImageEdited']): NewEvent => ({ type: 'StorageImageEdited', data, time: NOW, cause: ownerCause });
const attachRequested = (vmId = VM, diskDev = 'vdb', attachId = ATTACH): NewEvent => ({
  type: 'StorageImageAttachRequested',
  data: { vmId, diskDev, attachId },
  time: NOW,
  cause: ownerCause,
});
const attached = (vmId = VM, diskDev = 'vdb', mode: 'hot' | 'boot' = 'hot', attachId = ATTACH): NewEvent => ({
  type: 'StorageImageAttached',
  data: { vmId, diskDev, mode, attachId },
  time: NOW,
  cause: ownerCause,
});
const attachFailed = (vmId = VM, diskDev = 'vdb', reason = 'virsh failed', attachId = ATTACH): NewEvent => ({
  type: 'StorageImageAttachFailed',
  data: { vmId, diskDev, reason, attachId },
  time: NOW,
  cause: ownerCause,
});
const detached = (vmId = VM, diskDev = 'vdb', attachId = ATTACH): NewEvent => ({ type: 'StorageImageDetached', data: { vmId, diskDev, attachId }, time: NOW, cause: ownerCause });
const revoked: NewEvent = { type: 'StorageImageRevoked', data: {}, time: NOW, cause: ownerCause };

/** Histories that put the image in each state. */
const ADDING = [created()];
const OK = [created(), ready];
const FAILED = [created(), diskFailed()];
const ATTACHING = [...OK, attachRequested()];
const ATTACHED = [...OK, attachRequested(), attached()];
const REVOKED = [...OK, revoked];

const create = (over: Partial<Extract<StorageImageCommand, { type: 'CreateStorageImage' }>> = {}): StorageImageCommand => ({
  type: 'CreateStorageImage',
  imageId: 1,
  name: 'data',
  description: '',
  diskController: 'virtio',
  filesystem: 'ext4',
  sizeMb: 100,
  ...over,
});
const edit = (over: Omit<Extract<StorageImageCommand, { type: 'EditStorageImage' }>, 'type'>): StorageImageCommand => ({ type: 'EditStorageImage', ...over });
const running = (over: Partial<VmView> = {}): VmView => ({ vmId: VM, userId: OWNER, running: true, ...over });
const notRunning = (over: Partial<VmView> = {}): VmView => running({ running: false, ...over });
/** `null` stands for a VM the directory does not know (a default parameter would swallow `undefined`). */
/** `taken`: the VM's devices in use; the decider picks the first free one. */
const hotAttach = (vm: VmView | null = running(), taken: readonly string[] = [], attachId = ATTACH, maxDisks = 10): StorageImageCommand => ({
  type: 'RequestHotAttach',
  vm: vm ?? undefined,
  devicesTaken: taken,
  maxDisks,
  attachId,
});
const confirm = (attachId = ATTACH): StorageImageCommand => ({ type: 'ConfirmAttach', attachId });
const failAttach = (attachId = ATTACH, reason = 'virsh failed'): StorageImageCommand => ({ type: 'FailAttach', attachId, reason });
const atBoot = (vm: VmView | null = notRunning(), diskDev = 'sdb', vmId = VM, attachId = ATTACH): StorageImageCommand => ({
  type: 'AttachAtBoot',
  vm: vm ?? undefined,
  vmId,
  diskDev,
  attachId,
});
/** A detach of the attachment `attachId` (the one the caller read). */
const detach = (attachId = ATTACH): StorageImageCommand => ({ type: 'Detach', attachId });
const vmStopped = (vmId = VM): StorageImageCommand => ({ type: 'DetachStoppedVm', vmId });
const REVOKE: StorageImageCommand = { type: 'RevokeStorageImage' };
const MARK_READY: StorageImageCommand = { type: 'MarkDiskReady', storage: 'default' };
const MARK_FAILED: StorageImageCommand = { type: 'MarkDiskFailed', reason: 'mkfs failed' };

/** A history whose image is on `controller`, ready to be attached. */
const okOn = (diskController: StorageImageEventData['StorageImageCreated']['diskController']) => [created({ diskController }), ready];

// ---------------------------------------------------------------------------
// Ownership and lookup

describe('ownership: storage images are private (image_permission); admin and system may act on any', () => {
  test('another user gets image_permission', () => {
    given(OK).when(REVOKE, asStranger).thenFails('image_permission');
  });
  test('another user cannot read-modify either: edit and attach are refused with image_permission', () => {
    given(OK).when(edit({ name: 'mine' }), asStranger).thenFails('image_permission');
    given(OK).when(hotAttach(running({ userId: OTHER })), asStranger).thenFails('image_permission');
  });
  test('a portal acting for another user gets image_permission', () => {
    given(OK).when(edit({ name: 'x' }), asPortalForOther).thenFails('image_permission');
  });
  test('a portal acting for the owner may act', () => {
    given(OK).when(edit({ name: 'x' }), asPortalForOwner).then([{ type: 'StorageImageEdited', data: { name: 'x' }, cause: portalCause }]);
  });
  test('the owner may act', () => {
    given(OK).when(REVOKE, asOwner).then([{ type: 'StorageImageRevoked', data: {}, cause: ownerCause }]);
  });
  test('an admin may act on any image (CC1 admin_get)', () => {
    given(OK).when(REVOKE, asAdmin).then([{ type: 'StorageImageRevoked', data: {}, cause: adminCause }]);
    given(ATTACHED).when(detach(), asAdmin).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: adminCause }]);
  });
  test('the system may act on any image', () => {
    given(ADDING).when(MARK_READY, asDiskWorker).then([{ type: 'StorageImageDiskReady', data: { storage: 'default', opId: 'image-1@1' }, cause: diskCause }]);
    given(ATTACHED).when(vmStopped(), asSystem).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: stopCause }]);
  });
});

describe('unknown id: image_get', () => {
  const commands: StorageImageCommand[] = [
    MARK_READY,
    MARK_FAILED,
    edit({ name: 'x' }),
    hotAttach(),
    confirm(),
    failAttach(),
    atBoot(),
    detach(),
    vmStopped(),
    REVOKE,
  ];
  test.each(commands.map((c) => [c.type, c] as const))('%s on an image that does not exist is image_get', (_type, command) => {
    given([]).when(command, asOwner).thenFails('image_get');
  });
  test('an admin asking for an unknown id gets image_get too, not a permission error', () => {
    given([]).when(REVOKE, asAdmin).thenFails('image_get');
  });
});

// ---------------------------------------------------------------------------
// Create

describe('create: validation', () => {
  test('a valid image is created in state adding, owned by the caller', () => {
    given([]).when(create(), asOwner).then([created()]);
    expect(fold([created()]).status).toBe('adding');
  });
  test('a portal creates the image for the user it acts for', () => {
    given([]).when(create(), asPortalForOwner).then([{ ...created({ userId: OWNER }), cause: portalCause }]);
  });
  test('the system does not create images', () => {
    given([]).when(create(), asSystem).thenFails('validation');
  });
  test('creating over an existing stream is a concurrency_conflict', () => {
    given(ADDING).when(create(), asOwner).thenFails('concurrency_conflict');
  });
  test(`name: ${NAME_MAX} characters are fine, counted in code points (45 emoji)`, () => {
    const name = '😀'.repeat(NAME_MAX); // 90 UTF-16 units, 45 code points
    expect(name.length).toBe(90);
    given([]).when(create({ name }), asOwner).then([created({ name })]);
  });
  test(`name: ${NAME_MAX + 1} characters are refused (validation)`, () => {
    given([]).when(create({ name: '😀'.repeat(NAME_MAX + 1) }), asOwner).thenFails('validation', /name/);
    given([]).when(create({ name: 'a'.repeat(NAME_MAX + 1) }), asOwner).thenFails('validation', /name/);
  });
  test('name: empty is refused (validation)', () => {
    given([]).when(create({ name: '' }), asOwner).thenFails('validation', /name/);
  });
  test('name: blank is refused (validation)', () => {
    given([]).when(create({ name: '   \t' }), asOwner).thenFails('validation', /blank/);
  });
  test('name: one character is fine', () => {
    given([]).when(create({ name: 'a' }), asOwner).then([created({ name: 'a' })]);
  });
  test(`description: empty and ${DESCRIPTION_MAX} characters are fine`, () => {
    given([]).when(create({ description: '' }), asOwner).then([created({ description: '' })]);
    const description = 'é'.repeat(DESCRIPTION_MAX);
    given([]).when(create({ description }), asOwner).then([created({ description })]);
  });
  test(`description: ${DESCRIPTION_MAX + 1} characters are refused (validation)`, () => {
    given([]).when(create({ description: 'x'.repeat(DESCRIPTION_MAX + 1) }), asOwner).thenFails('validation', /description/);
  });
  test('unknown disk controller is refused (validation)', () => {
    given([])
      .when(create({ diskController: 'floppy' as never }), asOwner)
      .thenFails('validation', /controller/);
  });
  test('unknown filesystem is refused (validation)', () => {
    given([])
      .when(create({ filesystem: 'btrfs' as never }), asOwner)
      .thenFails('validation', /filesystem/);
  });
  test.each(['scsi', 'virtio', 'ide', 'sata', 'usb'] as const)('every CC1 controller may be chosen: %s', (diskController) => {
    given([]).when(create({ diskController }), asOwner).then([created({ diskController })]);
  });
  test.each(['raw', 'fat32', 'ext4', 'reiserfs', 'xfs', 'ntfs'] as const)('every CC1 filesystem may be chosen: %s', (filesystem) => {
    given([]).when(create({ filesystem, sizeMb: 300 }), asOwner).then([created({ filesystem, sizeMb: 300 })]);
  });
});

describe('create: a filesystem needs room (image_invalid_size)', () => {
  test('xfs under 300 MB is image_invalid_size (mkfs.xfs refuses it)', () => {
    given([]).when(create({ filesystem: 'xfs', sizeMb: 299 }), asOwner).thenFails('image_invalid_size', /xfs/);
  });
  test('xfs of 300 MB is fine', () => {
    given([]).when(create({ filesystem: 'xfs', sizeMb: 300 }), asOwner).then([created({ filesystem: 'xfs', sizeMb: 300 })]);
  });
});

describe('create: size (image_invalid_size)', () => {
  test.each([0, -1, -100])('size %p < 1 is image_invalid_size', (sizeMb) => {
    given([]).when(create({ sizeMb }), asOwner).thenFails('image_invalid_size');
  });
  test.each([1.5, 0.5, Number.NaN, Number.POSITIVE_INFINITY])('non-integer size %p is image_invalid_size', (sizeMb) => {
    given([]).when(create({ sizeMb }), asOwner).thenFails('image_invalid_size');
  });
  test(`size > ${SIZE_MAX_MB} is image_invalid_size`, () => {
    given([]).when(create({ sizeMb: SIZE_MAX_MB + 1 }), asOwner).thenFails('image_invalid_size');
  });
  test(`sizes 1 and ${SIZE_MAX_MB} are fine`, () => {
    given([]).when(create({ sizeMb: 1 }), asOwner).then([created({ sizeMb: 1 })]);
    given([]).when(create({ sizeMb: SIZE_MAX_MB }), asOwner).then([created({ sizeMb: SIZE_MAX_MB })]);
  });
});

// The quota (user_storage_limit) is not the decider's: the create transaction checks it
// against the ledger (store tests; test/e2e/rest.e2e.test.ts over HTTP).

// ---------------------------------------------------------------------------
// Disk file

describe('disk file: MarkDiskReady / MarkDiskFailed only from adding; repeats change nothing', () => {
  test('ready: adding -> ok', () => {
    given(ADDING).when(MARK_READY, asDiskWorker).then([{ type: 'StorageImageDiskReady', data: { storage: 'default', opId: 'image-1@1' }, cause: diskCause }]);
  });
  test('failed: adding -> failed, with the reason', () => {
    given(ADDING).when(MARK_FAILED, asDiskWorker).then([{ type: 'StorageImageDiskFailed', data: { reason: 'mkfs failed', opId: 'image-1@1' }, cause: diskCause }]);
  });
  test('a repeated MarkDiskReady is a no-op', () => {
    given(OK).when(MARK_READY, asDiskWorker).thenNothing();
  });
  test('a repeated MarkDiskFailed is a no-op', () => {
    given(FAILED).when(MARK_FAILED, asDiskWorker).thenNothing();
  });
  test('a late result after the other one changes nothing', () => {
    given(OK).when(MARK_FAILED, asDiskWorker).thenNothing();
    given(FAILED).when(MARK_READY, asDiskWorker).thenNothing();
  });
  test('a disk result on a revoked image changes nothing', () => {
    given(REVOKED).when(MARK_READY, asDiskWorker).thenNothing();
  });
});

// ---------------------------------------------------------------------------
// Edit

describe('edit: name, description, controller while ok or adding (image_edit otherwise)', () => {
  test('allowed in state ok', () => {
    given(OK)
      .when(edit({ name: 'backup', description: 'nightly', diskController: 'usb' }), asOwner)
      .then([{ type: 'StorageImageEdited', data: { name: 'backup', description: 'nightly', diskController: 'usb' }, cause: ownerCause }]);
  });
  test('allowed in state adding', () => {
    given(ADDING).when(edit({ name: 'backup' }), asOwner).then([{ type: 'StorageImageEdited', data: { name: 'backup' }, cause: ownerCause }]);
  });
  test('refused in state failed (image_edit)', () => {
    given(FAILED).when(edit({ name: 'backup' }), asOwner).thenFails('image_edit');
  });
  test('refused on a revoked image (image_edit)', () => {
    given(REVOKED).when(edit({ name: 'backup' }), asOwner).thenFails('image_edit');
  });
  test('a no-op edit yields no event', () => {
    given(OK).when(edit({ name: 'data', description: '', diskController: 'virtio' }), asOwner).thenNothing();
    given(OK).when(edit({}), asOwner).thenNothing();
  });
  test('only the fields that change are in the event', () => {
    given(OK)
      .when(edit({ name: 'data', description: 'new' }), asOwner)
      .then([{ type: 'StorageImageEdited', data: { description: 'new' }, cause: ownerCause }]);
  });
  test('edit validates like create: name length, blank name, description length, controller', () => {
    given(OK).when(edit({ name: 'x'.repeat(NAME_MAX + 1) }), asOwner).thenFails('validation');
    given(OK).when(edit({ name: '  ' }), asOwner).thenFails('validation');
    given(OK).when(edit({ name: '' }), asOwner).thenFails('validation');
    given(OK).when(edit({ description: 'x'.repeat(DESCRIPTION_MAX + 1) }), asOwner).thenFails('validation');
    given(OK).when(edit({ diskController: 'floppy' as never }), asOwner).thenFails('validation');
  });
  test('controller change is refused while attached (image_attached)', () => {
    given(ATTACHED).when(edit({ diskController: 'usb' }), asOwner).thenFails('image_attached');
  });
  test('controller change is refused while being attached (image_attached)', () => {
    given(ATTACHING).when(edit({ diskController: 'usb' }), asOwner).thenFails('image_attached');
  });
  test('name and description may change while attached', () => {
    given(ATTACHED)
      .when(edit({ name: 'live', diskController: 'virtio' }), asOwner)
      .then([{ type: 'StorageImageEdited', data: { name: 'live' }, cause: ownerCause }]);
  });
});

// ---------------------------------------------------------------------------
// Hot attach

describe('hot attach (RequestHotAttach)', () => {
  test('a running VM of the owner and a virtio disk: the device is claimed', () => {
    given(OK).when(hotAttach(running(), []), asOwner).then([{ type: 'StorageImageAttachRequested', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: ownerCause }]);
  });
  test('usb is live-capable too', () => {
    given(okOn('usb')).when(hotAttach(running(), []), asOwner).then([{ type: 'StorageImageAttachRequested', data: { vmId: VM, diskDev: 'sdb', attachId: ATTACH }, cause: ownerCause }]);
  });
  test('unknown VM is vm_get', () => {
    given(OK).when(hotAttach(null), asOwner).thenFails('vm_get');
  });
  test('a VM of another user is vm_get', () => {
    given(OK).when(hotAttach(running({ userId: OTHER })), asOwner).thenFails('vm_get');
  });
  test('an admin cannot plug an image into a VM of another user either (vm_get)', () => {
    given(OK).when(hotAttach(running({ userId: OTHER })), asAdmin).thenFails('vm_get');
  });
  test('a VM that is not running is storage_image_attach, pointing at the boot-time route', () => {
    given(OK).when(hotAttach(notRunning()), asOwner).thenFails('storage_image_attach', new RegExp(`POST /vms/${VM}/disks`));
  });
  test.each(['scsi', 'ide', 'sata'] as const)('a %s disk cannot be hot plugged (storage_image_attach)', (controller) => {
    given(okOn(controller)).when(hotAttach(running(), []), asOwner).thenFails('storage_image_attach', /virtio and usb/);
  });
  test('already attached is image_attached', () => {
    given(ATTACHED).when(hotAttach(running(), ['vdb']), asOwner).thenFails('image_attached', /attached to this VM/);
    given(ATTACHED).when(hotAttach(running({ vmId: 6 }), []), asOwner).thenFails('image_attached', /another VM/);
  });
  test('being attached is image_attached', () => {
    given(ATTACHING).when(hotAttach(running(), ['vdb']), asOwner).thenFails('image_attached', /being attached/);
  });
  test('state adding is storage_image_attach', () => {
    given(ADDING).when(hotAttach(), asOwner).thenFails('storage_image_attach', /adding/);
  });
  test('state failed is storage_image_attach', () => {
    given(FAILED).when(hotAttach(), asOwner).thenFails('storage_image_attach', /failed/);
  });
  test('a revoked image cannot be attached (storage_image_attach)', () => {
    given(REVOKED).when(hotAttach(), asOwner).thenFails('storage_image_attach');
  });
  test('an image detached after a failed attach can be attached again', () => {
    given([...ATTACHING, attachFailed()])
      .when(hotAttach(running(), [], 'image-1@5'), asOwner)
      .then([{ type: 'StorageImageAttachRequested', data: { vmId: VM, diskDev: 'vdb', attachId: 'image-1@5' }, cause: ownerCause }]);
  });
  test('an image detached can be attached again', () => {
    given([...ATTACHED, detached()])
      .when(hotAttach(running(), ['vdb'], 'image-1@6'), asOwner)
      .then([{ type: 'StorageImageAttachRequested', data: { vmId: VM, diskDev: 'vdc', attachId: 'image-1@6' }, cause: ownerCause }]);
  });
});

describe('ConfirmAttach: only for the attach in progress (by attach id); a repeat is a no-op', () => {
  test('after the request: Attached (hot)', () => {
    given(ATTACHING).when(confirm(), asOwner).then([{ type: 'StorageImageAttached', data: { vmId: VM, diskDev: 'vdb', mode: 'hot', attachId: ATTACH }, cause: ownerCause }]);
  });
  test('the reconciler may confirm too', () => {
    given(ATTACHING).when(confirm(), asReconciler).then([{ type: 'StorageImageAttached', data: { vmId: VM, diskDev: 'vdb', mode: 'hot', attachId: ATTACH }, cause: reconcilerCause }]);
  });
  test('without a request it is refused (storage_image_attach)', () => {
    given(OK).when(confirm(), asOwner).thenFails('storage_image_attach');
  });
  test('for another attach it is refused (storage_image_attach): a late confirm of an earlier attach', () => {
    given(ATTACHING).when(confirm('image-1@1'), asOwner).thenFails('storage_image_attach');
  });
  test('a repeat of an earlier attach after a new one is attached is refused too, not a no-op', () => {
    const reattached = [...ATTACHED, detached(), attachRequested(VM, 'vdc', 'image-1@6'), attached(VM, 'vdc', 'hot', 'image-1@6')];
    given(reattached).when(confirm(ATTACH), asOwner).thenFails('storage_image_attach');
    given(reattached).when(confirm('image-1@6'), asOwner).thenNothing();
  });
  test('after a failed attach it is refused (storage_image_attach)', () => {
    given([...ATTACHING, attachFailed()]).when(confirm(), asOwner).thenFails('storage_image_attach');
  });
  test('a repeat is a no-op', () => {
    given(ATTACHED).when(confirm(), asOwner).thenNothing();
  });
});

describe('FailAttach frees the image, only for the attach in progress', () => {
  test('attaching -> AttachFailed, and the image is detached again', () => {
    const [event] = given(ATTACHING)
      .when(failAttach(ATTACH, 'timeout'), asOwner)
      .then([{ type: 'StorageImageAttachFailed', data: { vmId: VM, diskDev: 'vdb', reason: 'timeout', attachId: ATTACH }, cause: ownerCause }]);
    expect(fold([...ATTACHING, event!])).toEqual({ status: 'ok', image: expect.anything(), attachment: null });
  });
  test('no attach in progress with that id: no-op (a repeat, or a stale failure)', () => {
    given(OK).when(failAttach(), asOwner).thenNothing();
    given(ATTACHED).when(failAttach(), asOwner).thenNothing();
    given(ATTACHING).when(failAttach('image-1@1'), asOwner).thenNothing();
    given([...ATTACHING, attachFailed()]).when(failAttach(), asOwner).thenNothing();
  });
  test('a late failure of an earlier attach leaves a newer attach in progress alone', () => {
    const again = [...ATTACHING, attachFailed(), attachRequested(VM, 'vdc', 'image-1@5')];
    given(again).when(failAttach(ATTACH), asReconciler).thenNothing();
  });
});

// ---------------------------------------------------------------------------
// Attach at boot (VM creation support)

describe('AttachAtBoot: any bus, for a VM not running (or not yet known); refused for a running VM', () => {
  test.each(['scsi', 'virtio', 'ide', 'sata', 'usb'] as const)('a %s disk on a VM not running is recorded as attached (boot)', (controller) => {
    given(okOn(controller))
      .when(atBoot(notRunning(), 'sdb'), asPortalForOwner)
      .then([{ type: 'StorageImageAttached', data: { vmId: VM, diskDev: 'sdb', mode: 'boot', attachId: ATTACH }, cause: portalCause }]);
  });
  test('a VM not yet known to the directory is fine', () => {
    given(OK).when(atBoot(null, 'vdb'), asAdmin).then([{ type: 'StorageImageAttached', data: { vmId: VM, diskDev: 'vdb', mode: 'boot', attachId: ATTACH }, cause: adminCause }]);
  });
  test('a running VM is refused (storage_image_attach)', () => {
    given(OK).when(atBoot(running(), 'vdb'), asOwner).thenFails('storage_image_attach', /running/);
  });
  test('a VM of another user is vm_get', () => {
    given(OK).when(atBoot(notRunning({ userId: OTHER })), asPortalForOwner).thenFails('vm_get');
  });
  test('an image attached elsewhere is image_attached', () => {
    given(ATTACHED).when(atBoot(notRunning({ vmId: 6 }), 'sdb', 6), asOwner).thenFails('image_attached');
  });
  test('an image in state adding/failed/revoked is refused', () => {
    given(ADDING).when(atBoot(), asOwner).thenFails('storage_image_attach');
    given(FAILED).when(atBoot(), asOwner).thenFails('storage_image_attach');
    given(REVOKED).when(atBoot(), asOwner).thenFails('storage_image_attach');
  });
  test('a repeat of the same boot attach is a no-op', () => {
    given([...OK, attached(VM, 'sdb', 'boot')]).when(atBoot(notRunning(), 'sdb'), asOwner).thenNothing();
  });
});

// ---------------------------------------------------------------------------
// Detach

describe('detach (storage_image_detach when it fails)', () => {
  test('an attached image is detached from its VM and device', () => {
    given(ATTACHED).when(detach(ATTACH), asOwner).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: ownerCause }]);
  });
  test('a boot-attached image can be detached', () => {
    given([...OK, attached(VM, 'sdb', 'boot')]).when(detach(), asOwner).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'sdb', attachId: ATTACH }, cause: ownerCause }]);
  });
  test('pinned to the attachment it names: one that ended changes nothing (the attachment it unplugged is gone)', () => {
    given(OK).when(detach(), asOwner).thenNothing();
    given(ADDING).when(detach(), asOwner).thenNothing();
    given(REVOKED).when(detach(), asOwner).thenNothing();
    given([...ATTACHED, detached()]).when(detach(), asOwner).thenNothing();
  });
  test('a detach that lost a race never ends a newer attachment of the image (another device, another attach id)', () => {
    given([...ATTACHED, detached(), attachRequested(VM, 'vdc', 'image-1@6'), attached(VM, 'vdc', 'hot', 'image-1@6')]).when(detach(ATTACH), asOwner).thenNothing();
  });
  test('an attach in progress is storage_image_detach', () => {
    given(ATTACHING).when(detach(), asOwner).thenFails('storage_image_detach', /in progress/);
  });
});

describe('VM stopped (DetachStoppedVm): records only, system cause vm-stopped', () => {
  test('detaches in the records, with the system cause vm-stopped', () => {
    const events = given(ATTACHED).when(vmStopped(), asSystem).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: stopCause }]);
    expect(events[0]!.cause).toEqual({ kind: 'system', reason: 'vm-stopped' });
  });
  test('no-op when the image is not on that VM', () => {
    given(OK).when(vmStopped(), asSystem).thenNothing();
    given(ATTACHED).when(vmStopped(6), asSystem).thenNothing();
    given(ATTACHING).when(vmStopped(6), asSystem).thenNothing();
  });
  test('a repeat is a no-op', () => {
    given([...ATTACHED, detached()]).when(vmStopped(), asSystem).thenNothing();
  });
  test('an attach in progress becomes AttachFailed', () => {
    given(ATTACHING)
      .when(vmStopped(), asSystem)
      .then([{ type: 'StorageImageAttachFailed', data: { vmId: VM, diskDev: 'vdb', reason: 'VM stopped during attach', attachId: ATTACH }, cause: stopCause }]);
  });
  test('a revoked image changes nothing', () => {
    given(REVOKED).when(vmStopped(), asSystem).thenNothing();
  });
});

// ---------------------------------------------------------------------------
// Revoke

describe('revoke: only when detached (image_attached) and ok (image_delete)', () => {
  test('a detached ok image is revoked', () => {
    given(OK).when(REVOKE, asOwner).then([{ type: 'StorageImageRevoked', data: {}, cause: ownerCause }]);
  });
  test('attached is image_attached', () => {
    given(ATTACHED).when(REVOKE, asOwner).thenFails('image_attached');
  });
  test('being attached is image_attached', () => {
    given(ATTACHING).when(REVOKE, asOwner).thenFails('image_attached');
  });
  test('state adding is image_delete', () => {
    given(ADDING).when(REVOKE, asOwner).thenFails('image_delete');
  });
  test('state failed is image_delete', () => {
    given(FAILED).when(REVOKE, asOwner).thenFails('image_delete');
  });
  test('revoking a revoked image is a no-op', () => {
    given(REVOKED).when(REVOKE, asOwner).thenNothing();
  });
  test('a revoked image keeps its owner: a stranger still gets image_permission', () => {
    given(REVOKED).when(REVOKE, asStranger).thenFails('image_permission');
  });
});

describe('revoked images: edit and attach refused', () => {
  test('edit is image_edit', () => {
    given(REVOKED).when(edit({ description: 'again' }), asOwner).thenFails('image_edit');
  });
  test('hot attach is storage_image_attach', () => {
    given(REVOKED).when(hotAttach(), asOwner).thenFails('storage_image_attach');
  });
  test('boot attach is storage_image_attach', () => {
    given(REVOKED).when(atBoot(), asOwner).thenFails('storage_image_attach');
  });
});

// ---------------------------------------------------------------------------
// evolve / fold

describe('evolve: the state after each event', () => {
  const image = {
    imageId: 1,
    userId: OWNER,
    name: 'data',
    description: '',
    diskController: 'virtio' as const,
    filesystem: 'ext4' as const,
    sizeMb: 100,
    creationDate: NOW,
  };

  test('initial state is none', () => {
    expect(initialState()).toEqual({ status: 'none' });
    expect(fold([])).toEqual({ status: 'none' });
  });
  test("Created -> adding, creationDate is the event time; the disk file's operation is the Created (version 1)", () => {
    expect(evolve(initialState(), created())).toEqual({ status: 'adding', image, fileOp: 'image-1@1' });
  });
  test('DiskReady -> ok, detached', () => {
    expect(fold(OK)).toEqual({ status: 'ok', image, attachment: null });
  });
  test('DiskReady on a storage -> the image records it; without one (older events) it has none', () => {
    const onB: NewEvent = { ...ready, data: { storage: 'b' } } as NewEvent;
    expect(fold([...ADDING, onB])).toEqual({ status: 'ok', image: { ...image, storage: 'b' }, attachment: null });
    expect(fold(OK)).not.toHaveProperty('image.storage');
  });
  test('DiskFailed -> failed with the reason', () => {
    expect(fold(FAILED)).toEqual({ status: 'failed', image, reason: 'mkfs failed' });
  });
  test('Edited -> the changed fields only, the rest kept', () => {
    expect(fold([...OK, edited({ name: 'n2' })])).toEqual({ status: 'ok', image: { ...image, name: 'n2' }, attachment: null });
    expect(fold([...ADDING, edited({ description: 'd', diskController: 'scsi' })])).toEqual({
      status: 'adding',
      image: { ...image, description: 'd', diskController: 'scsi' },
      fileOp: 'image-1@1',
    });
  });
  test('Edited while attached keeps the attachment', () => {
    const state = fold([...ATTACHED, edited({ name: 'n2' })]);
    expect(state).toMatchObject({ status: 'ok', image: { name: 'n2' }, attachment: { phase: 'attached', vmId: VM } });
  });
  test('AttachRequested -> ok, attaching to the VM and device, named by its attach id', () => {
    const later = { ...attachRequested(), time: LATER };
    expect(fold([...OK, later])).toEqual({ status: 'ok', image, attachment: { phase: 'attaching', vmId: VM, diskDev: 'vdb', attachId: ATTACH, since: LATER } });
  });
  test('Attached -> ok, attached with its mode', () => {
    expect(fold(ATTACHED)).toEqual({ status: 'ok', image, attachment: { phase: 'attached', vmId: VM, diskDev: 'vdb', mode: 'hot', attachId: ATTACH, since: NOW } });
    expect(fold([...OK, attached(VM, 'sdb', 'boot', 'image-1@3')])).toEqual({
      status: 'ok',
      image,
      attachment: { phase: 'attached', vmId: VM, diskDev: 'sdb', mode: 'boot', attachId: 'image-1@3', since: NOW },
    });
  });
  test('AttachFailed -> ok, detached', () => {
    expect(fold([...ATTACHING, attachFailed()])).toEqual({ status: 'ok', image, attachment: null });
  });
  test('Detached -> ok, detached', () => {
    expect(fold([...ATTACHED, detached()])).toEqual({ status: 'ok', image, attachment: null });
  });
  test('Revoked -> locked', () => {
    expect(fold(REVOKED)).toEqual({ status: 'locked', image });
  });
  test('an event other than Created on an empty stream changes nothing', () => {
    expect(evolve(initialState(), ready)).toEqual({ status: 'none' });
    expect(evolve(initialState(), revoked)).toEqual({ status: 'none' });
  });
  test('fold continues from a given state (snapshot)', () => {
    const snapshot = fold(OK);
    expect(fold([attachRequested(), attached()], snapshot)).toEqual(fold(ATTACHED));
  });
  test('CC1 state names: adding, failed, ok, locked', () => {
    const name = (events: NewEvent[]) => cc1StateOf(fold(events) as Exclude<StorageImageState, { status: 'none' }>);
    expect([name(ADDING), name(FAILED), name(OK), name(ATTACHED), name(REVOKED)]).toEqual(['adding', 'failed', 'ok', 'ok', 'locked']);
  });
  test('decide then evolve: a whole life cycle', () => {
    let state: StorageImageState = initialState();
    const run = (command: StorageImageCommand, c: CommandContext) => {
      const events = decide(command, state, c);
      state = fold(events, state);
      return events.map((e) => e.type);
    };
    expect(run(create(), asOwner)).toEqual(['StorageImageCreated']);
    expect(run(MARK_READY, asDiskWorker)).toEqual(['StorageImageDiskReady']);
    expect(run(hotAttach(), asOwner)).toEqual(['StorageImageAttachRequested']);
    expect(run(confirm(), asOwner)).toEqual(['StorageImageAttached']);
    expect(run(vmStopped(), asSystem)).toEqual(['StorageImageDetached']);
    expect(run(REVOKE, asOwner)).toEqual(['StorageImageRevoked']);
    expect(state.status).toBe('locked');
  });
  test('streams are named image-<id>', () => {
    expect(streamIdOf(42)).toBe('image-42');
  });
});

// ---------------------------------------------------------------------------
// Envelope: time and cause

describe('every event carries its time and who caused it', () => {
  test('causeOf: user, admin and portal carry the user id; system carries its reason', () => {
    expect(causeOf({ kind: 'user', userId: 3 })).toEqual({ kind: 'user', userId: 3 });
    expect(causeOf({ kind: 'admin', userId: 1 })).toEqual({ kind: 'admin', userId: 1 });
    expect(causeOf({ kind: 'portal', userId: 3 })).toEqual({ kind: 'portal', userId: 3 });
    expect(causeOf({ kind: 'system', reason: 'vm-stopped' })).toEqual({ kind: 'system', reason: 'vm-stopped' });
  });

  const cases: Array<[string, NewEvent[], StorageImageCommand, CommandContext, Record<string, unknown>]> = [
    ['Created by a user', [], create(), ctx({ kind: 'user', userId: OWNER }, LATER), { kind: 'user', userId: OWNER }],
    ['Created by a portal', [], create(), ctx({ kind: 'portal', userId: OWNER }, LATER), { kind: 'portal', userId: OWNER }],
    ['DiskReady by the system', ADDING, MARK_READY, ctx({ kind: 'system', reason: 'disk-file' }, LATER), { kind: 'system', reason: 'disk-file' }],
    ['DiskFailed by the system', ADDING, MARK_FAILED, ctx({ kind: 'system', reason: 'disk-file' }, LATER), { kind: 'system', reason: 'disk-file' }],
    ['Edited by an admin', OK, edit({ name: 'z' }), ctx({ kind: 'admin', userId: ADMIN }, LATER), { kind: 'admin', userId: ADMIN }],
    ['AttachRequested by a user', OK, hotAttach(), ctx({ kind: 'user', userId: OWNER }, LATER), { kind: 'user', userId: OWNER }],
    ['Attached by the reconciler', ATTACHING, confirm(), ctx({ kind: 'system', reason: 'reconciled' }, LATER), { kind: 'system', reason: 'reconciled' }],
    ['AttachFailed by a user', ATTACHING, failAttach(), ctx({ kind: 'user', userId: OWNER }, LATER), { kind: 'user', userId: OWNER }],
    ['Attached at boot by a portal', OK, atBoot(), ctx({ kind: 'portal', userId: OWNER }, LATER), { kind: 'portal', userId: OWNER }],
    ['Detached by an admin', ATTACHED, detach(), ctx({ kind: 'admin', userId: ADMIN }, LATER), { kind: 'admin', userId: ADMIN }],
    ['Detached on VM stop', ATTACHED, vmStopped(), ctx({ kind: 'system', reason: 'vm-stopped' }, LATER), { kind: 'system', reason: 'vm-stopped' }],
    ['Revoked by a user', OK, REVOKE, ctx({ kind: 'user', userId: OWNER }, LATER), { kind: 'user', userId: OWNER }],
  ];
  test.each(cases)('%s: time is the command time, cause is the actor', (_name, history, command, c, cause) => {
    const events = decide(command, fold(history), c);
    expect(events).toHaveLength(1);
    expect(events[0]!.time).toBe(LATER);
    expect(events[0]!.cause).toEqual(cause);
  });
});

describe('decide returns what one command step appends: at most one event', () => {
  const histories: Array<[string, NewEvent[]]> = [
    ['none', []],
    ['adding', ADDING],
    ['failed', FAILED],
    ['ok', OK],
    ['attaching', ATTACHING],
    ['attached', ATTACHED],
    ['revoked', REVOKED],
  ];
  const commands: StorageImageCommand[] = [
    create(),
    MARK_READY,
    MARK_FAILED,
    edit({ name: 'other', description: 'd', diskController: 'usb' }),
    hotAttach(),
    confirm(),
    failAttach(),
    atBoot(),
    detach(),
    vmStopped(),
    REVOKE,
  ];
  const pairs = histories.flatMap(([name, history]) => commands.map((command) => [name, command.type, history, command] as const));
  test.each(pairs)('%s, %s: zero or one event, or a refusal', (_state, _type, history, command) => {
    let events: NewEvent[] = [];
    try {
      events = decide(command, fold(history), asAdmin);
    } catch {
      return; // a refusal appends nothing
    }
    expect(events.length).toBeLessThanOrEqual(1);
  });
});

describe('create and edit: text must be well-formed', () => {
  const NOW2 = '2026-11-26T10:00:00.000Z';
  const owner: CommandContext = { actor: { kind: 'user', userId: 7101 }, now: NOW2 };
  const base = { type: 'CreateStorageImage' as const, imageId: 1, description: '', diskController: 'virtio' as const, filesystem: 'raw' as const, sizeMb: 1 };
  test('a lone surrogate in the name is refused (validation)', () => {
    given([]).when({ ...base, name: 'x\ud800' }, owner).thenFails('validation', /well-formed/);
  });
  test('NUL in the description is refused (validation)', () => {
    given([]).when({ ...base, name: 'x', description: 'a\u0000b' }, owner).thenFails('validation', /well-formed/);
  });
  test('astral characters (a pair of surrogates) are fine', () => {
    given([]).when({ ...base, name: '😀'.repeat(45) }, owner).then([{ type: 'StorageImageCreated', data: { imageId: 1, userId: 7101, name: '😀'.repeat(45), description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 1 }, cause: { kind: 'user', userId: 7101 } }]);
  });
});

// ---------------------------------------------------------------------------
// SPEC 4.7: repair and resize

const asForcingAdmin = ctx({ kind: 'admin', userId: ADMIN, reason: 'forced' });
const forcedCause = { kind: 'admin' as const, userId: ADMIN, reason: 'forced' };
const FORCE_REVOKE: StorageImageCommand = { type: 'ForceRevokeStorageImage' };
const RETRY: StorageImageCommand = { type: 'RetryDiskFile', opId: 'image-1@3' };
const RESIZE_OP = 'image-1@3';
const resize = (sizeMb: number, opId = RESIZE_OP): StorageImageCommand => ({ type: 'RequestResize', sizeMb, opId });
const completeResize = (opId = RESIZE_OP): StorageImageCommand => ({ type: 'CompleteResize', opId });
const failResize = (opId = RESIZE_OP): StorageImageCommand => ({ type: 'FailResize', opId, reason: 'no room' });
const resizeRequested = (fromMb: number, toMb: number, opId = RESIZE_OP): NewEvent => ({ type: 'StorageImageResizeRequested', data: { opId, fromMb, toMb }, time: NOW, cause: ownerCause });

describe('force revoke (admin repair): any state but attached', () => {
  test('a failed and a stuck adding image are revoked, marked forced', () => {
    given(FAILED).when(FORCE_REVOKE, asForcingAdmin).then([{ type: 'StorageImageRevoked', data: { forced: true }, cause: forcedCause }]);
    given(ADDING).when(FORCE_REVOKE, asForcingAdmin).then([{ type: 'StorageImageRevoked', data: { forced: true }, cause: forcedCause }]);
  });
  test('an ok image is revoked as by the owner; a revoked one changes nothing', () => {
    given(OK).when(FORCE_REVOKE, asForcingAdmin).then([{ type: 'StorageImageRevoked', data: {}, cause: forcedCause }]);
    given(REVOKED).when(FORCE_REVOKE, asForcingAdmin).thenNothing();
  });
  test('attached or being attached: image_attached', () => {
    given(ATTACHED).when(FORCE_REVOKE, asForcingAdmin).thenFails('image_attached');
    given(ATTACHING).when(FORCE_REVOKE, asForcingAdmin).thenFails('image_attached');
  });
  test('only admins (and the system) repair: the owner gets admin_required', () => {
    given(FAILED).when(FORCE_REVOKE, asOwner).thenFails('admin_required');
  });
});

describe('disk retry (admin repair)', () => {
  test('a failed or adding image goes back to adding', () => {
    given(FAILED).when(RETRY, asAdmin).then([{ type: 'StorageImageDiskRetried', data: { from: 'failed', opId: 'image-1@3' }, cause: adminCause }]);
    given(ADDING).when(RETRY, asAdmin).then([{ type: 'StorageImageDiskRetried', data: { from: 'adding', opId: 'image-1@3' }, cause: adminCause }]);
    given([...FAILED, { type: 'StorageImageDiskRetried', data: { from: 'failed', opId: 'image-1@3' }, time: NOW, cause: adminCause }]).when(MARK_READY, asDiskWorker).then([
      { type: 'StorageImageDiskReady', data: { storage: 'default', opId: 'image-1@3' }, cause: diskCause },
    ]);
  });
  test("pinned: a slow outcome of Created's try changes nothing once a retry began; the retry's own outcome counts", () => {
    const retried = [...ADDING, { type: 'StorageImageDiskRetried' as const, data: { from: 'adding' as const, opId: 'image-1@2' }, time: NOW, cause: adminCause }];
    given(retried).when({ type: 'MarkDiskReady', storage: 'default', opId: 'image-1@1' }, asDiskWorker).thenNothing();
    given(retried).when({ type: 'MarkDiskFailed', reason: 'late', opId: 'image-1@1' }, asDiskWorker).thenNothing();
    given(retried).when({ type: 'MarkDiskReady', storage: 'default', opId: 'image-1@2' }, asDiskWorker).then([
      { type: 'StorageImageDiskReady', data: { storage: 'default', opId: 'image-1@2' }, cause: diskCause },
    ]);
  });
  test('ok or revoked: image_retry; the owner: admin_required', () => {
    given(OK).when(RETRY, asAdmin).thenFails('image_retry');
    given(REVOKED).when(RETRY, asAdmin).thenFails('image_retry');
    given(FAILED).when(RETRY, asOwner).thenFails('admin_required');
  });
});

describe('force detach (admin repair): records only', () => {
  test('attached: Detached with reason forced; being attached: AttachFailed', () => {
    given(ATTACHED).when({ type: 'ForceDetach' }, asForcingAdmin).then([{ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb', attachId: ATTACH }, cause: forcedCause }]);
    given(ATTACHING).when({ type: 'ForceDetach', vmId: VM }, asForcingAdmin).then([
      { type: 'StorageImageAttachFailed', data: { vmId: VM, diskDev: 'vdb', reason: 'forced detach', attachId: ATTACH }, cause: forcedCause },
    ]);
  });
  test('not attached, or on another VM: storage_image_detach; the owner: admin_required', () => {
    given(OK).when({ type: 'ForceDetach' }, asForcingAdmin).thenFails('storage_image_detach');
    given(ATTACHED).when({ type: 'ForceDetach', vmId: VM + 1 }, asForcingAdmin).thenFails('storage_image_detach');
    given(ATTACHED).when({ type: 'ForceDetach' }, asOwner).thenFails('admin_required');
  });
});

describe('resize: larger only, ok images, attached only on virtio; intent first, outcome pinned', () => {
  test('a detached image: the intent says from and to (the quota grows with it), before any host grows', () => {
    given(OK).when(resize(200), asOwner).then([{ type: 'StorageImageResizeRequested', data: { opId: RESIZE_OP, fromMb: 100, toMb: 200 }, cause: ownerCause }]);
  });
  test('the outcome of that resize: Resized; one naming another resize is refused and changes nothing', () => {
    const open = [...OK, resizeRequested(100, 200)];
    given(open).when(completeResize(), asOwner).then([{ type: 'StorageImageResized', data: { fromMb: 100, toMb: 200, opId: RESIZE_OP }, cause: ownerCause }]);
    given(open).when(completeResize('image-1@9'), asOwner).thenFails('image_resize', /not in progress/);
    given(open).when(failResize(), asOwner).then([{ type: 'StorageImageResizeFailed', data: { opId: RESIZE_OP, fromMb: 100, toMb: 200, reason: 'no room' }, cause: ownerCause }]);
    given(open).when(failResize('image-1@9'), asOwner).thenNothing();
    given(OK).when(failResize(), asOwner).thenNothing();
  });
  test('while a resize is open: another resize, an attach and a revoke wait; the same resize again changes nothing (a retry)', () => {
    const open = [...OK, resizeRequested(100, 200)];
    given(open).when(resize(300, 'image-1@4'), asOwner).thenFails('image_resize', /in progress/);
    given(open).when(resize(200, 'image-1@4'), asOwner).thenNothing();
    given(open).when(hotAttach(), asOwner).thenFails('storage_image_attach', /resize/);
    given(open).when(atBoot(), asOwner).thenFails('storage_image_attach', /resize/);
    given(open).when(REVOKE, asOwner).thenFails('image_delete', /resize/);
    given(open).when(FORCE_REVOKE, asForcingAdmin).thenFails('image_delete', /resize/);
  });
  test('evolve: the intent keeps the size; Resized sets it and ends the operation; ResizeFailed ends it, size kept', () => {
    const open = fold([...OK, resizeRequested(100, 200)]);
    expect(open).toMatchObject({ status: 'ok', image: { sizeMb: 100 }, operation: { type: 'resize', opId: RESIZE_OP, toMb: 200 } });
    const done = fold([...OK, resizeRequested(100, 200), { type: 'StorageImageResized', data: { fromMb: 100, toMb: 200, opId: RESIZE_OP }, time: NOW, cause: ownerCause }]);
    expect(done.status === 'ok' && [done.image.sizeMb, done.operation]).toEqual([200, undefined]);
    const failed = fold([...OK, resizeRequested(100, 200), { type: 'StorageImageResizeFailed', data: { opId: RESIZE_OP, fromMb: 100, toMb: 200, reason: 'x' }, time: NOW, cause: ownerCause }]);
    expect(failed.status === 'ok' && [failed.image.sizeMb, failed.operation]).toEqual([100, undefined]);
  });
  test('a VM stop during a live resize keeps the operation open (records-only detach)', () => {
    const state = fold([...ATTACHED, resizeRequested(100, 200), detached()]);
    expect(state).toMatchObject({ status: 'ok', attachment: null, operation: { opId: RESIZE_OP } });
  });
  test('an attached virtio image grows (live); other buses: image_attached; an attach in progress: image_attached', () => {
    given(ATTACHED).when(resize(200), asOwner).then([{ type: 'StorageImageResizeRequested', data: { opId: RESIZE_OP, fromMb: 100, toMb: 200 }, cause: ownerCause }]);
    given([created({ diskController: 'sata' }), ready, attached(VM, 'sdb', 'boot')]).when(resize(200), asOwner).thenFails('image_attached');
    given(ATTACHING).when(resize(200), asOwner).thenFails('image_attached');
  });
  test('smaller or too large: image_invalid_size; the same size again changes nothing (a retry)', () => {
    given(OK).when(resize(50), asOwner).thenFails('image_invalid_size');
    given(OK).when(resize(2_000_001), asOwner).thenFails('image_invalid_size');
    given(OK).when(resize(100), asOwner).thenNothing();
  });
  test('adding, failed, revoked: image_resize; someone else: image_permission', () => {
    given(ADDING).when(resize(200), asOwner).thenFails('image_resize');
    given(FAILED).when(resize(200), asOwner).thenFails('image_resize');
    given(REVOKED).when(resize(200), asOwner).thenFails('image_resize');
    given(OK).when(resize(200), asStranger).thenFails('image_permission');
  });
  test('evolve: an old Resized (no intent, written before resizes were sagas) sets the size', () => {
    const state = fold([...OK, { type: 'StorageImageResized', data: { fromMb: 100, toMb: 200 }, time: NOW, cause: ownerCause }]);
    expect(state.status === 'ok' && state.image.sizeMb).toBe(200);
  });
});
