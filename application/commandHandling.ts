/**
 * The one application step every command goes through: load, decide, commit, with a
 * bounded retry (with backoff) when another writer committed first. The commit is one
 * transaction: the event, the stream head, the read-model row (read-your-writes, lists
 * included), the step's effects (device claims, quota) and the saga's open-operation
 * items (saga.ts), all or nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../domain/errors';
import {
  decide,
  evolve,
  operationIdOf,
  streamIdOf,
  type CommandContext,
  type Event,
  type NewEvent,
  type StorageImageCommand,
  type StorageImageEventType,
  type StorageImageState,
} from '../domain/storageImage';
import type { Logger } from './logger';
import { operationEffects } from './saga';
import { ConcurrencyError, type EventStore, type ImageReadModel, type LoadedStream, type StepEffects, type StoredEvent } from './storePorts';

export interface CommandDeps {
  events: EventStore;
  readModel: ImageReadModel;
  logger: Logger;
  /** How many times a command is decided again after losing a race. */
  maxConflictRetries?: number;
}

/** The wait before the n-th retry (n >= 1): 20 ms, then x1.5, with jitter so racing writers spread out. */
export const conflictBackoffMs = (n: number, random: () => number = Math.random): number => Math.round(20 * 1.5 ** (n - 1) * (0.5 + random()));

/** What the step decided: the effects it commits are computed from it. */
export interface Decided {
  event: NewEvent;
  before: StorageImageState;
  after: StorageImageState;
  /** The version the event gets. */
  version: number;
}

export interface CommandOptions {
  /** The stream as the caller just read it: saves the first load. */
  loaded?: LoadedStream;
  /** The writes committed with the event (claims, releases, quota). */
  effects?: (decided: Decided) => StepEffects;
  /** Retries after a lost race (default: the deps'): 0 hands the ConcurrencyError to a caller that must read more than the stream again. */
  retries?: number;
}

export interface CommandResult {
  version: number;
  state: StorageImageState;
  appended?: StoredEvent;
}

/** A command, or how to make it from the stream as loaded (a retry decides on fresh facts). */
export type CommandSource = StorageImageCommand | ((loaded: LoadedStream) => StorageImageCommand);

export const handleCommand = async (
  deps: CommandDeps,
  imageId: number,
  source: CommandSource,
  ctx: CommandContext,
  options: CommandOptions = {},
): Promise<CommandResult> => {
  const streamId = streamIdOf(imageId);
  const retries = options.retries ?? deps.maxConflictRetries ?? 8;
  for (let attempt = 0; ; attempt++) {
    const loaded = attempt === 0 && options.loaded ? options.loaded : await deps.events.load(streamId);
    const command = typeof source === 'function' ? source(loaded) : source;
    const [event] = decide(command, loaded.state, ctx);
    if (!event) return loaded;
    const after = evolve(loaded.state, event);
    const decided: Decided = { event, before: loaded.state, after, version: loaded.version + 1 };
    const effects = { ...options.effects?.(decided), ...operationEffects(imageId, decided, event.time) };
    try {
      const [stored] = await deps.events.commit([{ streamId, expectedVersion: loaded.version, event, stateAfter: after }], effects);
      return { version: stored!.version, state: after, appended: stored };
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      if (options.retries === 0) throw error;
      if (attempt >= retries) throw new DomainError('concurrency_conflict', 'The storage image is changing concurrently; try again.');
      await sleep(conflictBackoffMs(attempt + 1));
    }
  }
};

/** The id of the operation whose intent is the stream's next event (an attach's: what its device claim carries). */
export const operationIdAt = (imageId: number, loaded: LoadedStream): string => operationIdOf(imageId, loaded.version + 1);
export const attachIdAt = operationIdAt;

/** The decided event as the type the step expects: its effects read typed data, not a cast. */
export const eventOf = <T extends StorageImageEventType>(event: NewEvent, type: T): Event<T> => {
  if (event.type !== type) throw new Error(`expected ${type}, decided ${event.type}`);
  return event as Event<T>;
};
