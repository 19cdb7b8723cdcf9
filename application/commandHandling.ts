/**
 * The one application step every command goes through: load, decide, commit, with a
 * bounded retry when another writer committed first. The commit is one transaction:
 * the event, the stream head, the read-model row (read-your-writes, lists included) and
 * the step's effects (device claims, quota), all or nothing.
 */
import { DomainError } from '../domain/errors';
import { decide, evolve, streamIdOf, type CommandContext, type NewEvent, type StorageImageCommand, type StorageImageState } from '../domain/storageImage';
import type { Logger } from './logger';
import { ConcurrencyError, type EventStore, type ImageReadModel, type LoadedStream, type StepEffects, type StoredEvent } from './storePorts';

export interface CommandDeps {
  events: EventStore;
  readModel: ImageReadModel;
  logger: Logger;
  /** How many times a command is decided again after losing a race. */
  maxConflictRetries?: number;
}

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
  const retries = deps.maxConflictRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    const loaded = attempt === 0 && options.loaded ? options.loaded : await deps.events.load(streamId);
    const command = typeof source === 'function' ? source(loaded) : source;
    const [event] = decide(command, loaded.state, ctx);
    if (!event) return loaded;
    const after = evolve(loaded.state, event);
    const decided: Decided = { event, before: loaded.state, after, version: loaded.version + 1 };
    try {
      const [stored] = await deps.events.commit([{ streamId, expectedVersion: loaded.version, event, stateAfter: after }], options.effects?.(decided));
      return { version: stored!.version, state: after, appended: stored };
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      if (attempt >= retries) throw new DomainError('concurrency_conflict', 'The storage image is changing concurrently; try again.');
    }
  }
};

/** The id of the attach whose request is the stream's next event: what its device claim carries. */
export const attachIdAt = (imageId: number, loaded: LoadedStream): string => `${streamIdOf(imageId)}@${loaded.version + 1}`;
