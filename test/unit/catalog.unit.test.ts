/**
 * CC1's catalogues and error codes: the integer ids on CC1's wire and the HTTP
 * statuses of our REST API. These are contracts with existing portals.
 */
import { DOCUMENTS } from '../../adapters/ssm/documents';
import {
  ALL_MKFS_TOOLS,
  DISK_CONTROLLERS,
  FILESYSTEMS,
  IMAGE_STATES,
  MKFS_TOOLS,
  canMake,
  diskControllerById,
  diskControllerId,
  filesystemById,
  filesystemId,
  imageStateId,
  isDiskController,
  isFilesystem,
  isLiveAttachable,
} from '../../domain/catalog';
import { DomainError, ERROR_CODES, fail, isDomainError, type ErrorCode } from '../../domain/errors';

describe('disk controllers: CC1 ids', () => {
  test.each([
    ['scsi', 0, false],
    ['virtio', 1, true],
    ['ide', 2, false],
    ['sata', 3, false],
    ['usb', 4, true],
  ] as const)('%s = %i, live attach %p', (name, id, live) => {
    expect(diskControllerId(name)).toBe(id);
    expect(diskControllerById(id)).toBe(name);
    expect(isLiveAttachable(name)).toBe(live);
    expect(isDiskController(name)).toBe(true);
  });
  test('exactly these five, in id order', () => {
    expect(DISK_CONTROLLERS.map((c) => [c.id, c.name, c.liveAttach])).toEqual([
      [0, 'scsi', false],
      [1, 'virtio', true],
      [2, 'ide', false],
      [3, 'sata', false],
      [4, 'usb', true],
    ]);
  });
  test('only virtio and usb are live-capable', () => {
    expect(DISK_CONTROLLERS.filter((c) => c.liveAttach).map((c) => c.name)).toEqual(['virtio', 'usb']);
  });
  test('unknown ids and names are not controllers', () => {
    for (const id of [-1, 5, 1.5, '1', null, undefined]) expect(diskControllerById(id)).toBeUndefined();
    for (const name of ['floppy', 'VIRTIO', '', 1, null]) expect(isDiskController(name)).toBe(false);
  });
});

describe('filesystems: CC1 ids', () => {
  test.each([
    ['raw', 0],
    ['fat32', 2],
    ['ext4', 5],
    ['reiserfs', 6],
    ['xfs', 7],
    ['ntfs', 8],
  ] as const)('%s = %i', (name, id) => {
    expect(filesystemId(name)).toBe(id);
    expect(filesystemById(id)).toBe(name);
    expect(isFilesystem(name)).toBe(true);
  });
  test('exactly these six', () => {
    expect(FILESYSTEMS.map((f) => [f.id, f.name])).toEqual([
      [0, 'raw'],
      [2, 'fat32'],
      [5, 'ext4'],
      [6, 'reiserfs'],
      [7, 'xfs'],
      [8, 'ntfs'],
    ]);
  });
  test('the gaps in CC1 numbering are not filesystems', () => {
    for (const id of [1, 3, 4, 9, -1, '5']) expect(filesystemById(id)).toBeUndefined();
    for (const name of ['btrfs', 'EXT4', '']) expect(isFilesystem(name)).toBe(false);
  });
});

describe('filesystems: the tool and Debian package each needs', () => {
  test('the whole table', () => {
    expect(MKFS_TOOLS).toEqual({
      raw: undefined,
      ext4: { tool: 'mkfs.ext4', debianPackage: 'e2fsprogs' },
      fat32: { tool: 'mkfs.vfat', debianPackage: 'dosfstools' },
      xfs: { tool: 'mkfs.xfs', debianPackage: 'xfsprogs' },
      reiserfs: { tool: 'mkfs.reiserfs', debianPackage: 'reiserfsprogs' },
      ntfs: { tool: 'mkfs.ntfs', debianPackage: 'ntfs-3g' },
    });
  });
  test('raw needs nothing; the others their tool', () => {
    const fresh = new Set(['mkfs.ext4']);
    expect(FILESYSTEMS.filter((f) => canMake(f.name, fresh)).map((f) => f.name)).toEqual(['raw', 'ext4']);
    expect(FILESYSTEMS.every((f) => canMake(f.name, new Set(ALL_MKFS_TOOLS)))).toBe(true);
  });
  test('CreateDiskFile runs exactly the tools StorageTools reports', () => {
    const create = DOCUMENTS.createDiskFile.content.mainSteps[0]!.inputs.runCommand.join('\n');
    const report = DOCUMENTS.storageTools.content.mainSteps[0]!.inputs.runCommand.join('\n');
    expect([...create.matchAll(/\b(mkfs\.[a-z0-9]+) /g)].map((m) => m[1]).sort()).toEqual([...ALL_MKFS_TOOLS].sort());
    for (const tool of ALL_MKFS_TOOLS) expect(report).toContain(` ${tool}`);
  });
});

describe('image states: CC1 ids', () => {
  test.each([
    ['ok', 0],
    ['locked', 1],
    ['adding', 2],
    ['failed', 3],
    ['unavailable', 4],
    ['formatting', 5],
  ] as const)('%s = %i', (name, id) => {
    expect(imageStateId(name)).toBe(id);
  });
  test('exactly these six', () => {
    expect(IMAGE_STATES.map((s) => [s.id, s.name])).toEqual([
      [0, 'ok'],
      [1, 'locked'],
      [2, 'adding'],
      [3, 'failed'],
      [4, 'unavailable'],
      [5, 'formatting'],
    ]);
  });
});

describe('error codes -> HTTP status', () => {
  const expected: Record<ErrorCode, number> = {
    validation: 400,
    image_invalid_size: 400,
    unauthorized: 401,
    user_permission: 403,
    image_permission: 403,
    admin_required: 403,
    image_get: 404,
    vm_get: 404,
    not_found: 404,
    user_storage_limit: 409,
    image_attached: 409,
    image_delete: 409,
    image_edit: 409,
    image_resize: 409,
    image_retry: 409,
    storage_image_attach: 409,
    storage_image_detach: 409,
    concurrency_conflict: 409,
    idempotency_in_progress: 409,
    filesystem_unavailable: 409,
    idempotency_key_reused: 422,
    hypervisor_unavailable: 503,
    timeout: 503,
    service_unavailable: 503,
  };
  test('the whole table', () => {
    expect(ERROR_CODES).toEqual(expected);
  });
  test.each(Object.entries(expected) as Array<[ErrorCode, number]>)('%s -> %i', (code, status) => {
    expect(new DomainError(code, 'm').httpStatus).toBe(status);
  });
  test('image_invalid_size is a 400 (validation), not a conflict', () => {
    expect(ERROR_CODES.image_invalid_size).toBe(400);
  });
  test('never a 500: every code maps to 4xx or 503', () => {
    for (const status of Object.values(ERROR_CODES)) expect(status === 503 || (status >= 400 && status < 500)).toBe(true);
  });
  test('fail throws a DomainError with code and message', () => {
    let caught: unknown;
    try {
      fail('image_edit', 'no');
    } catch (e) {
      caught = e;
    }
    expect(isDomainError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: 'image_edit', message: 'no', name: 'DomainError' });
    expect(isDomainError(new Error('x'))).toBe(false);
  });
});
