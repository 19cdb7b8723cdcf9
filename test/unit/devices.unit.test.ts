/**
 * Guest device naming: one namespace per VM, prefix by bus, letters from `b`,
 * first free wins, at most N storage disks per VM.
 */
import fc from 'fast-check';
import { DISK_CONTROLLERS, type DiskController } from '../../domain/catalog';
import { DEFAULT_MAX_DISKS_PER_VM, allocateDevice, candidateDevices, devicePrefix, isStorageDevice } from '../../domain/devices';
import { DomainError } from '../../domain/errors';

const BUSES = DISK_CONTROLLERS.map((c) => c.name);

const refusal = (run: () => unknown): DomainError => {
  try {
    run();
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a DomainError');
};

describe('devicePrefix: vd for virtio, hd for ide, sd for scsi, sata and usb', () => {
  test.each([
    ['virtio', 'vd'],
    ['ide', 'hd'],
    ['scsi', 'sd'],
    ['sata', 'sd'],
    ['usb', 'sd'],
  ] as const)('%s -> %s', (bus, prefix) => {
    expect(devicePrefix(bus)).toBe(prefix);
  });
});

describe('candidateDevices', () => {
  test('virtio: vdb..vdz, letters from b (a is the system disk)', () => {
    const devs = candidateDevices('virtio');
    expect(devs[0]).toBe('vdb');
    expect(devs.at(-1)).toBe('vdz');
    expect(devs).toHaveLength(25);
    expect(devs).not.toContain('vda');
  });
  test('ide: only hdb, hdc, hdd (IDE has four devices, hda is the system disk)', () => {
    expect(candidateDevices('ide')).toEqual(['hdb', 'hdc', 'hdd']);
  });
  test.each(['scsi', 'sata', 'usb'] as const)('%s: sdb..sdy, never sda (system disk) nor sdz (CD-ROM)', (bus) => {
    const devs = candidateDevices(bus);
    expect(devs[0]).toBe('sdb'); // CC1 skipped sdb; we do not
    expect(devs.at(-1)).toBe('sdy');
    expect(devs).not.toContain('sda');
    expect(devs).not.toContain('sdz');
    expect(devs).toHaveLength(24);
  });
  test('names on every bus are in alphabetical order with no gaps', () => {
    for (const bus of BUSES) {
      const letters = candidateDevices(bus).map((d) => d.charCodeAt(2));
      letters.forEach((code, i) => expect(code).toBe('b'.charCodeAt(0) + i));
    }
  });
  test('isStorageDevice: storage names yes, system disk and CD-ROM no', () => {
    for (const dev of ['vdb', 'vdz', 'hdb', 'hdd', 'sdb', 'sdy']) expect(isStorageDevice(dev)).toBe(true);
    for (const dev of ['vda', 'hda', 'sda', 'sdz', 'hde', 'xvdb', '']) expect(isStorageDevice(dev)).toBe(false);
  });
});

describe('allocateDevice', () => {
  test('an empty VM gets the b device of the bus', () => {
    expect(allocateDevice('virtio', [])).toBe('vdb');
    expect(allocateDevice('ide', [])).toBe('hdb');
    expect(allocateDevice('scsi', [])).toBe('sdb');
    expect(allocateDevice('sata', [])).toBe('sdb');
    expect(allocateDevice('usb', [])).toBe('sdb');
  });
  test('the first free one wins, gaps are filled', () => {
    expect(allocateDevice('virtio', ['vdb', 'vdc'])).toBe('vdd');
    expect(allocateDevice('virtio', ['vdb', 'vdd'])).toBe('vdc');
    expect(allocateDevice('ide', ['hdc'])).toBe('hdb');
  });
  test('vdb and sdb are distinct names: a virtio disk does not block an sd bus', () => {
    expect(allocateDevice('scsi', ['vdb'])).toBe('sdb');
    expect(allocateDevice('virtio', ['sdb'])).toBe('vdb');
    expect(allocateDevice('ide', ['vdb', 'sdb'])).toBe('hdb');
  });
  test('scsi, sata and usb share the sd namespace', () => {
    const taken: string[] = [];
    for (const bus of ['scsi', 'sata', 'usb'] as const) taken.push(allocateDevice(bus, taken));
    expect(taken).toEqual(['sdb', 'sdc', 'sdd']);
  });
  test('ide is limited to three storage disks: the fourth is refused with storage_image_attach', () => {
    const e = refusal(() => allocateDevice('ide', ['hdb', 'hdc', 'hdd']));
    expect(e.code).toBe('storage_image_attach');
    expect(e.message).toMatch(/No free hd\* device/);
    expect(e.message).toMatch(/ide/);
  });
  test('the sd namespace never hands out sdz', () => {
    const taken = candidateDevices('scsi').slice(0, -1); // sdb..sdx
    expect(allocateDevice('usb', taken, 100)).toBe('sdy');
    const e = refusal(() => allocateDevice('usb', [...taken, 'sdy'], 100));
    expect(e.code).toBe('storage_image_attach');
  });
  test(`at most ${DEFAULT_MAX_DISKS_PER_VM} storage disks per VM by default`, () => {
    expect(DEFAULT_MAX_DISKS_PER_VM).toBe(10);
    const nine = candidateDevices('virtio').slice(0, 9);
    expect(allocateDevice('virtio', nine)).toBe('vdk');
    const ten = candidateDevices('virtio').slice(0, 10);
    const e = refusal(() => allocateDevice('scsi', ten));
    expect(e.code).toBe('storage_image_attach');
    expect(e.message).toMatch(/10 storage disks \(maximum 10\)/);
  });
  test('the maximum is configurable', () => {
    expect(refusal(() => allocateDevice('virtio', ['vdb', 'sdb'], 2)).code).toBe('storage_image_attach');
    expect(allocateDevice('virtio', ['vdb', 'sdb'], 3)).toBe('vdc');
    const many = candidateDevices('virtio').slice(0, 20);
    expect(allocateDevice('virtio', many, 25)).toBe('vdv');
  });
  test('the error is a DomainError mapped to HTTP 409', () => {
    expect(refusal(() => allocateDevice('ide', ['hdb', 'hdc', 'hdd'])).httpStatus).toBe(409);
  });
  test('duplicates in the taken list are counted once', () => {
    expect(allocateDevice('virtio', ['vdb', 'vdb', 'vdb'], 2)).toBe('vdc');
  });
});

describe('allocateDevice: properties', () => {
  const bus = fc.constantFrom<DiskController>(...BUSES);
  const max = fc.integer({ min: 1, max: 30 });

  /** Allocate for each bus in turn, as a VM would, recording each outcome. */
  const run = (buses: DiskController[], maxDisks: number) => {
    const taken: string[] = [];
    const steps: Array<{ bus: DiskController; before: string[]; dev?: string; error?: DomainError }> = [];
    for (const b of buses) {
      const before = [...taken];
      try {
        const dev = allocateDevice(b, taken, maxDisks);
        taken.push(dev);
        steps.push({ bus: b, before, dev });
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
        steps.push({ bus: b, before, error: e });
      }
    }
    return { taken, steps };
  };

  test('never returns a device that is taken already', () => {
    fc.assert(
      fc.property(fc.array(bus, { maxLength: 60 }), max, (buses, maxDisks) => {
        const { taken, steps } = run(buses, maxDisks);
        expect(new Set(taken).size).toBe(taken.length);
        for (const s of steps) if (s.dev) expect(s.before).not.toContain(s.dev);
      }),
    );
  });

  test('never exceeds the maximum number of storage disks', () => {
    fc.assert(
      fc.property(fc.array(bus, { maxLength: 60 }), max, (buses, maxDisks) => {
        const { taken } = run(buses, maxDisks);
        expect(taken.length).toBeLessThanOrEqual(maxDisks);
      }),
    );
  });

  test('never gives more than 3 ide storage disks', () => {
    fc.assert(
      fc.property(fc.array(bus, { maxLength: 60 }), fc.integer({ min: 1, max: 100 }), (buses, maxDisks) => {
        const { taken } = run(buses, maxDisks);
        expect(taken.filter((d) => d.startsWith('hd')).length).toBeLessThanOrEqual(3);
      }),
    );
  });

  test('always gives the first free candidate of the bus, and refuses only when full or none is free', () => {
    fc.assert(
      fc.property(fc.array(bus, { maxLength: 60 }), max, (buses, maxDisks) => {
        for (const s of run(buses, maxDisks).steps) {
          const firstFree = candidateDevices(s.bus).find((d) => !s.before.includes(d));
          if (s.dev) {
            expect(s.dev).toBe(firstFree);
            expect(s.dev.startsWith(devicePrefix(s.bus))).toBe(true);
          } else {
            expect(s.error!.code).toBe('storage_image_attach');
            expect(s.before.length >= maxDisks || firstFree === undefined).toBe(true);
          }
        }
      }),
    );
  });

  test('with any taken set (gaps, foreign names), the answer is the first free candidate, or a refusal when none is left', () => {
    const anyDev = fc.constantFrom(...BUSES.flatMap(candidateDevices), 'vda', 'sda', 'sdz', 'hda');
    // Half the sets hold every candidate of the bus (and maybe more): the no-free branch is
    // tried on every run, not left to the chance of drawing all of a bus's names.
    const takenFor = (b: DiskController) =>
      fc.oneof(
        fc.uniqueArray(anyDev, { maxLength: 12 }),
        fc.uniqueArray(anyDev, { maxLength: 4 }).map((extra) => [...new Set([...candidateDevices(b), ...extra])]),
      );
    const seen = { free: 0, full: 0 };
    fc.assert(
      fc.property(
        bus.chain((b) => fc.tuple(fc.constant(b), takenFor(b))),
        ([b, taken]) => {
          const firstFree = candidateDevices(b).find((d) => !taken.includes(d));
          // Room by count for one more: only the names decide.
          const maxDisks = taken.length + 1;
          if (firstFree) {
            seen.free++;
            expect(allocateDevice(b, taken, maxDisks)).toBe(firstFree);
          } else {
            seen.full++;
            const error = refusal(() => allocateDevice(b, taken, maxDisks));
            expect(error.code).toBe('storage_image_attach');
            expect(error.message).toContain(`No free ${devicePrefix(b)}* device`);
          }
        },
      ),
    );
    expect(seen.free).toBeGreaterThan(0);
    expect(seen.full).toBeGreaterThan(0);
  });
});
