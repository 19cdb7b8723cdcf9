/**
 * The saga's one list of host operations (application/saga.ts) and what is written
 * about it: docs/event-store.md's crash table must say exactly what HOST_OPERATIONS
 * says, so a new operation (or a changed repair) cannot ship with a stale table.
 * Also the open-operation items a step writes: one per slot it opens, removed when
 * it closes, in the step's own transaction.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_OPERATIONS, operationEffects, type HostOperation } from '../../application/saga';
import { initialState, type StorageImageState } from '../../domain/storageImage';

const docRows = (): Map<string, string[]> => {
  const doc = readFileSync(join(__dirname, '../../docs/event-store.md'), 'utf8');
  const block = /<!-- host-operations:begin -->\n([\s\S]*?)<!-- host-operations:end -->/.exec(doc);
  if (!block) throw new Error('docs/event-store.md has no host-operations table');
  const rows = block[1]!
    .trim()
    .split('\n')
    .slice(2) // header and separator
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
  return new Map(rows.map((cells) => [cells[0]!, cells.slice(1)]));
};

const expectedCells = (op: HostOperation): string[] => [
  op.intent ?? '–',
  op.host,
  op.outcomes.join(', '),
  op.reserves,
  op.reconciler,
  op.undo,
];

describe('docs/event-store.md crash table', () => {
  const rows = docRows();
  test('lists every host operation, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(HOST_OPERATIONS).sort());
  });
  test.each(Object.entries(HOST_OPERATIONS))('%s: its row says what HOST_OPERATIONS says', (name, op) => {
    expect(rows.get(name)).toEqual(expectedCells(op));
  });
});

describe('open-operation items', () => {
  const image = { id: 7, userId: 1, name: 'd', sizeMb: 10, storage: 'default', diskController: 'virtio', filesystem: 'raw', description: '', createdAt: 't' };
  const ok = { status: 'ok', image, attachment: null } as unknown as StorageImageState;
  const resizing = { ...ok, operation: { type: 'resize', opId: 'image-7@5', sizeMb: 20 } } as unknown as StorageImageState;
  const adding = { status: 'adding', image, fileOp: 'image-7@1' } as unknown as StorageImageState;

  test('the step that opens a resize writes its item; the step that closes it removes it', () => {
    expect(operationEffects(7, { before: ok, after: resizing }, 't1')).toEqual({
      operations: { open: [{ imageId: 7, slot: 'resize', opId: 'image-7@5', since: 't1' }], close: [] },
    });
    expect(operationEffects(7, { before: resizing, after: ok }, 't2')).toEqual({ operations: { open: [], close: [{ imageId: 7, slot: 'resize' }] } });
  });
  test('a create opens the file slot; a step that changes no operation writes no item', () => {
    expect(operationEffects(7, { before: initialState(), after: adding }, 't')).toMatchObject({ operations: { open: [{ slot: 'file', opId: 'image-7@1' }] } });
    expect(operationEffects(7, { before: ok, after: { ...ok } as StorageImageState }, 't')).toEqual({});
  });
});
