/** Where a new disk goes (the emptiest storage that can hold it), and the STORAGES setting. */
import { chooseStorage, diskFilePath, storageOf } from '../../application/storageChoice';
import { parseStorages, readConfig, storagesOf } from '../../functions/shared/config';

describe('chooseStorage', () => {
  it('the emptiest wins, whatever the configuration order', () => {
    expect(chooseStorage([{ id: 'a', freeMb: 100 }, { id: 'b', freeMb: 500 }, { id: 'c', freeMb: 300 }], 10)).toEqual({ ok: true, storage: 'b' });
  });
  it('a storage too small for the disk is skipped', () => {
    expect(chooseStorage([{ id: 'a', freeMb: 100 }, { id: 'b', freeMb: 50 }], 100)).toEqual({ ok: true, storage: 'a' });
  });
  it('ties: the first in configuration order', () => {
    expect(chooseStorage([{ id: 'a', freeMb: 10 }, { id: 'b', freeMb: 300 }, { id: 'c', freeMb: 300 }], 10)).toEqual({ ok: true, storage: 'b' });
  });
  it('a storage that did not answer is skipped', () => {
    expect(chooseStorage([{ id: 'a', freeMb: undefined }, { id: 'b', freeMb: 20 }], 10)).toEqual({ ok: true, storage: 'b' });
  });
  it('none fits: full, with a reason', () => {
    expect(chooseStorage([{ id: 'a', freeMb: 5 }, { id: 'b', freeMb: undefined }, { id: 'c', freeMb: 9 }], 10)).toEqual({
      ok: false,
      why: 'full',
      reason: 'no storage has room for 10 MB (the emptiest has 9 MB free)',
    });
  });
  it('none answered: unanswered (retry later, do not fail the image)', () => {
    expect(chooseStorage([{ id: 'a', freeMb: undefined }], 10)).toMatchObject({ ok: false, why: 'unanswered' });
    expect(chooseStorage([], 10)).toMatchObject({ ok: false, why: 'unanswered' });
  });
});

describe('storage of an image', () => {
  const storages = [
    { id: 'x', path: '/srv/x', hostId: 'mi-1' },
    { id: 'default', path: '/srv/d', hostId: 'mi-2' },
  ];
  it('no storage recorded: default, else the first', () => {
    expect(storageOf(storages, undefined).id).toBe('default');
    expect(storageOf([storages[0]!], undefined).id).toBe('x');
    expect(diskFilePath(storages, { userId: 1, imageId: 2, storage: 'x' })).toBe('/srv/x/1/2');
    expect(() => storageOf(storages, 'y')).toThrow(/"y" is not configured/);
  });
});

describe('STORAGES', () => {
  it('unset: one storage, default, from STORAGE_PATH and STORAGE_HOST_ID', () => {
    const config = readConfig({ STORAGE_PATH: '/srv/cc1', STORAGE_HOST_ID: 'mi-0123456789abcdef0' });
    expect(config.storages).toBeUndefined();
    expect(storagesOf(config)).toEqual([{ id: 'default', path: '/srv/cc1', hostId: 'mi-0123456789abcdef0' }]);
  });
  it('set: the list, in order', () => {
    const list = [
      { id: 'fast-1', path: '/srv/a', hostId: 'mi-0123456789abcdef0' },
      { id: 'slow', path: '/srv/b', hostId: 'i-0123456789abcdef0' },
    ];
    expect(storagesOf(readConfig({ STORAGES: JSON.stringify(list) }))).toEqual(list);
  });
  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['empty', '[]', /non-empty/],
    ['bad id', '[{"id":"A B","path":"/srv/a","hostId":"mi-1"}]', /id must match/],
    ['twice', '[{"id":"a","path":"/srv/a","hostId":"mi-1"},{"id":"a","path":"/srv/b","hostId":"mi-1"}]', /twice/],
    ['relative path', '[{"id":"a","path":"srv/a","hostId":"mi-1"}]', /path/],
    ['dot-dot path', '[{"id":"a","path":"/srv/../etc","hostId":"mi-1"}]', /path/],
    ['no host', '[{"id":"a","path":"/srv/a"}]', /hostId/],
  ])('refused: %s', (_, raw, message) => {
    expect(() => parseStorages(raw)).toThrow(message);
  });
});
