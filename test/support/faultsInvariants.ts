/**
 * What must hold after any fault, once the reconciler has run (SPEC 3):
 * - records and hosts agree: every image attached in the records is on its VM's host
 *   at that device, every storage disk on a host is attached in the records, and the
 *   VM's device claims are exactly the attached images (no claim without an image,
 *   no attached image without its claim), and each claim is held by the attach the
 *   image records (its attach id); a VM stopped for good (not `saved`) holds no claim;
 * - no device is held by two images;
 * - no event is lost: every stream has versions 1..n, and every event seen before
 *   the fault is still there, unchanged;
 * - the read model equals the log: each row is `toImageView(stream head)`.
 *
 * Each check returns a list of problems (empty when all holds), so a failing test
 * shows every disagreement at once.
 */
import type { AttachedDisk } from '../../application/ports';
import type { ServiceDeps } from '../../application/storageImages';
import type { ImageView, StoredEvent, VmRecord } from '../../application/storePorts';
import { toImageView } from '../../application/views';
import { shouldDetachAll } from '../../application/vmStops';
import type { StorageImageState } from '../../domain/storageImage';

/** The domain's disks as the host has them now; undefined when the host cannot tell. */
export type HostDisks = (vm: VmRecord) => Promise<AttachedDisk[] | undefined>;

export interface LogSnapshot {
  /** `streamId#version` -> `type@time` */
  events: Map<string, string>;
  heads: Map<number, { version: number; state: StorageImageState }>;
}

export const snapshotLog = async (deps: Pick<ServiceDeps, 'events'>): Promise<LogSnapshot> => {
  const all: StoredEvent[] = [];
  for await (const page of deps.events.scanAll()) all.push(...page);
  const events = new Map<string, string>();
  const heads = new Map<number, { version: number; state: StorageImageState }>();
  for (const e of all) {
    events.set(`${e.streamId}#${e.version}`, `${e.type}@${e.time}`);
    const imageId = Number(/(\d+)$/.exec(e.streamId)?.[1]);
    const head = heads.get(imageId);
    if (!head || head.version < e.version) heads.set(imageId, { version: e.version, state: e.stateAfter });
  }
  return { events, heads };
};

/** Versions 1..n contiguous per stream; every event of `before` still there, unchanged. */
export const logProblems = (now: LogSnapshot, before?: LogSnapshot): string[] => {
  const problems: string[] = [];
  const versions = new Map<string, number[]>();
  for (const key of now.events.keys()) {
    const [streamId, v] = [key.slice(0, key.lastIndexOf('#')), Number(key.slice(key.lastIndexOf('#') + 1))];
    (versions.get(streamId) ?? versions.set(streamId, []).get(streamId)!).push(v);
  }
  for (const [streamId, vs] of versions) {
    vs.sort((a, b) => a - b);
    vs.forEach((v, i) => {
      if (v !== i + 1) problems.push(`${streamId}: versions ${vs.join(',')} are not 1..${vs.length}`);
    });
  }
  for (const [key, what] of before?.events ?? []) {
    const still = now.events.get(key);
    if (still !== what) problems.push(`event ${key} (${what}) ${still ? `became ${still}` : 'is gone'}`);
  }
  return [...new Set(problems)];
};

const storageDisks = (disks: AttachedDisk[], storagePath: string): Map<string, string> =>
  new Map(disks.filter((d) => d.source.startsWith(`${storagePath}/`)).map((d) => [d.dev, d.source]));

export interface AgreementOptions {
  deps: ServiceDeps;
  storagePath: string;
  hostDisks: HostDisks;
  /** Only these VMs (default: every VM record). */
  vmIds?: number[];
  /** After reconciling nothing may be half-attached (default false). */
  allowAttaching?: boolean;
}

/** Records vs host vs claims, and one image per device. */
export const agreementProblems = async (o: AgreementOptions, log: LogSnapshot): Promise<string[]> => {
  const problems: string[] = [];
  const all = await o.deps.vms.list();
  const vms = o.vmIds ? all.filter((vm) => o.vmIds!.includes(vm.vmId)) : all;
  // Who the records say is where.
  const attachedAt = new Map<string, number[]>(); // `${vmId}/${dev}` -> image ids
  for (const [imageId, { state }] of log.heads) {
    if (state.status !== 'ok' || !state.attachment) continue;
    const a = state.attachment;
    const inScope = !o.vmIds || o.vmIds.includes(a.vmId);
    if (a.phase === 'attaching' && !o.allowAttaching && inScope) problems.push(`image ${imageId} still attaching to VM ${a.vmId} at ${a.diskDev}`);
    if (a.phase !== 'attached') continue;
    const key = `${a.vmId}/${a.diskDev}`;
    attachedAt.set(key, [...(attachedAt.get(key) ?? []), imageId]);
  }
  for (const [key, ids] of attachedAt) if (ids.length > 1) problems.push(`device ${key} held by images ${ids.join(', ')}`);

  for (const vm of vms) {
    const attached = new Map(
      [...attachedAt].filter(([key]) => key.startsWith(`${vm.vmId}/`)).map(([key, ids]) => [key.slice(key.indexOf('/') + 1), ids[0]!]),
    );
    const claims = new Map(Object.entries(vm.devices).map(([dev, c]) => [dev, c.imageId]));
    if (shouldDetachAll(vm) && claims.size > 0) problems.push(`VM ${vm.vmId} stopped (${vm.stopReason ?? 'stopped'}) still holds ${[...claims.keys()].join(', ')}`);
    for (const [dev, claim] of Object.entries(vm.devices)) {
      const head = log.heads.get(claim.imageId);
      const a = head?.state.status === 'ok' ? head.state.attachment : null;
      if (a && a.vmId === vm.vmId && a.diskDev === dev && a.attachId !== claim.attachId) {
        problems.push(`VM ${vm.vmId}: claim ${dev} held by attach ${claim.attachId}, the image records attach ${a.attachId}`);
      }
    }
    for (const [dev, imageId] of claims) {
      const head = log.heads.get(imageId);
      const attaching = head?.state.status === 'ok' && head.state.attachment?.phase === 'attaching' && head.state.attachment.vmId === vm.vmId;
      if (attached.get(dev) !== imageId && !(o.allowAttaching && attaching)) {
        problems.push(`VM ${vm.vmId}: claim ${dev} -> image ${imageId}, but the records have ${attached.get(dev) ?? 'nothing'} there`);
      }
    }
    for (const [dev, imageId] of attached) {
      if (claims.get(dev) !== imageId) problems.push(`VM ${vm.vmId}: image ${imageId} attached at ${dev} without its claim (claim: ${claims.get(dev) ?? 'none'})`);
    }
    if (vm.state !== 'running') continue; // boot-time disks of a VM not running: nothing on a host to compare
    const disks = await o.hostDisks(vm);
    if (!disks) continue;
    const onHost = storageDisks(disks, o.storagePath);
    for (const [dev, source] of onHost) {
      const imageId = attached.get(dev);
      const expected = imageId === undefined ? undefined : pathOf(o, log, imageId);
      if (source !== expected) problems.push(`VM ${vm.vmId}: ${dev} on the host is ${source}, the records have ${expected ?? 'nothing'}`);
    }
    for (const [dev, imageId] of attached) {
      if (!onHost.has(dev)) problems.push(`VM ${vm.vmId}: image ${imageId} attached at ${dev} in the records, not on the host`);
    }
  }
  return problems;
};

const pathOf = (o: AgreementOptions, log: LogSnapshot, imageId: number): string | undefined => {
  const head = log.heads.get(imageId);
  return head && head.state.status !== 'none' ? o.deps.storage.pathOf({ userId: head.state.image.userId, imageId }) : undefined;
};

/** Every row of the read model (all owners, revoked included). */
export const readModelRows = async (deps: Pick<ServiceDeps, 'readModel'>): Promise<ImageView[]> => {
  const rows: ImageView[] = [];
  let nextToken: string | undefined;
  do {
    const page = await deps.readModel.listAll({ limit: 100, nextToken, includeRevoked: true });
    rows.push(...page.items);
    nextToken = page.nextToken;
  } while (nextToken);
  return rows;
};

/** The read model (after the projector drained) equals the view of every stream head. */
export const readModelProblems = async (deps: Pick<ServiceDeps, 'readModel'>, log: LogSnapshot): Promise<string[]> => {
  const problems: string[] = [];
  const rows = new Map((await readModelRows(deps)).map((r) => [r.id, r]));
  for (const [imageId, head] of log.heads) {
    const expected = toImageView(head.state, head.version);
    const row = rows.get(imageId);
    rows.delete(imageId);
    if (!expected) continue;
    if (JSON.stringify(row && sortKeys(row)) !== JSON.stringify(sortKeys(expected))) {
      problems.push(`image ${imageId}: read model ${JSON.stringify(row)} != log ${JSON.stringify(expected)}`);
    }
  }
  for (const id of rows.keys()) problems.push(`read model row ${id} has no stream`);
  return problems;
};

const sortKeys = (o: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

export interface InvariantReport {
  problems: string[];
  events: number;
  streams: number;
}

/** All of the above. Call after `stack.drain()` so that the projector is done. */
export const checkInvariants = async (o: AgreementOptions & { before?: LogSnapshot }): Promise<InvariantReport> => {
  const log = await snapshotLog(o.deps);
  const problems = [...logProblems(log, o.before), ...(await agreementProblems(o, log)), ...(await readModelProblems(o.deps, log))];
  return { problems, events: log.events.size, streams: log.heads.size };
};
