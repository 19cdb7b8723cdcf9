/**
 * What every workflow gets: the stores, the hosts, the settings, a clock, and the few
 * helpers they share (the context of a command, the view of a state).
 */
import { DomainError } from '../domain/errors';
import type { Actor, CommandContext, StorageImageState } from '../domain/storageImage';
import type { CommandDeps } from './commandHandling';
import type { Hypervisor, StorageHost } from './ports';
import type { IdAllocator, ImageView, QuotaLedger, VmDirectory } from './storePorts';
import { toImageView } from './views';

export interface ServiceConfig {
  /** Storage quota per user in MB (the deployment's default). */
  defaultQuotaMb: number;
  maxDisksPerVm: number;
}

export interface Metrics {
  count(name: string, dimensions?: Record<string, string>): void;
}

export interface ServiceDeps extends CommandDeps {
  vms: VmDirectory;
  quota: QuotaLedger;
  ids: IdAllocator;
  hypervisor: Hypervisor;
  storage: StorageHost;
  config: ServiceConfig;
  clock?: () => string;
  metrics?: Metrics;
}

export const now = (deps: Pick<ServiceDeps, 'clock'>): string => (deps.clock ?? (() => new Date().toISOString()))();
export const contextOf = (deps: Pick<ServiceDeps, 'clock'>, actor: Actor): CommandContext => ({ actor, now: now(deps) });

/** The view of a state that exists (commands on a missing image fail before this). */
export const viewOf = (state: StorageImageState, version: number): ImageView => {
  const view = toImageView(state, version);
  if (!view) throw new DomainError('image_get', 'No such storage image.');
  return view;
};
