import { given } from '../support/deciderSpec';
import type { CommandContext, NewEvent, StorageImageCommand } from '../../domain/storageImage';

const NOW = '2026-11-26T10:00:00.000Z';
const OWNER = 7101;
const asOwner: CommandContext = { actor: { kind: 'user', userId: OWNER }, now: NOW };
const asStranger: CommandContext = { actor: { kind: 'user', userId: 9 }, now: NOW };
const asSystem: CommandContext = { actor: { kind: 'system', reason: 'vm-stopped' }, now: NOW };

const created = (over: Partial<Extract<NewEvent, { type: 'StorageImageCreated' }>['data']> = {}): NewEvent => ({
  type: 'StorageImageCreated',
  data: { imageId: 1, userId: OWNER, name: 'data', description: '', diskController: 'virtio', filesystem: 'ext4', sizeMb: 100, ...over },
  time: NOW,
  cause: { kind: 'user', userId: OWNER },
});
const ready: NewEvent = { type: 'StorageImageDiskReady', data: {}, time: NOW, cause: { kind: 'system', reason: 'disk-file' } };
const attached = (vmId = 5, diskDev = 'vdb'): NewEvent => ({
  type: 'StorageImageAttached',
  data: { vmId, diskDev, mode: 'hot' },
  time: NOW,
  cause: { kind: 'user', userId: OWNER },
});
const create = (over: Partial<Extract<StorageImageCommand, { type: 'CreateStorageImage' }>> = {}): StorageImageCommand => ({
  type: 'CreateStorageImage',
  imageId: 1,
  name: 'data',
  description: '',
  diskController: 'virtio',
  filesystem: 'ext4',
  sizeMb: 100,
  quota: { limitMb: 1000, usedMb: 0 },
  ...over,
});

describe('StorageImage rules', () => {
  test('create: a valid image is created in state adding', () => {
    given([]).when(create(), asOwner).then([created()]);
  });
  test('create: size < 1 is image_invalid_size', () => {
    given([]).when(create({ sizeMb: 0 }), asOwner).thenFails('image_invalid_size');
  });
  test('create: the quota must hold the new size (user_storage_limit)', () => {
    given([]).when(create({ sizeMb: 101, quota: { limitMb: 1000, usedMb: 900 } }), asOwner).thenFails('user_storage_limit');
  });
  test('ownership: another user gets image_permission', () => {
    given([created(), ready]).when({ type: 'RevokeStorageImage' }, asStranger).thenFails('image_permission');
  });
  test('detach: only from the VM it is on', () => {
    given([created(), ready, attached(5)]).when({ type: 'Detach', vmId: 6 }, asOwner).thenFails('storage_image_detach');
  });
  test('vm stopped: detaches in the records, once', () => {
    given([created(), ready, attached(5)]).when({ type: 'DetachStoppedVm', vmId: 5 }, asSystem).then([
      { type: 'StorageImageDetached', data: { vmId: 5, diskDev: 'vdb' } },
    ]);
    given([created(), ready]).when({ type: 'DetachStoppedVm', vmId: 5 }, asSystem).thenNothing();
  });
});
