/**
 * The one application step every command goes through: load, decide, append,
 * with a bounded retry when another writer appended first. The new event is
 * projected into the read model before the caller replies (read-your-writes);
 * the stream projector applies it again later and finds it current.
 */
import { DomainError } from '../domain/errors';
import { decide, evolve, streamIdOf, type CommandContext, type StorageImageCommand, type StorageImageState } from '../domain/storageImage';
import type { Logger } from './logger';
import { ConcurrencyError, type EventStore, type LoadedStream, type ImageReadModel, type StoredEvent } from './storePorts';

export interface CommandDeps {
  events: EventStore;
  readModel: ImageReadModel;
  logger: Logger;
  /** How many times a command is decided again after losing an append race. */
  maxConflictRetries?: number;
}

export interface CommandOptions {
  /** The stream as the caller just read it: saves the first load. */
  loaded?: LoadedStream;
  /** Project inline (default). Off for steps whose view does not change. */
  projectInline?: boolean;
}

export interface CommandResult {
  version: number;
  state: StorageImageState;
  appended?: StoredEvent;
}

/**
 * `commandFor` builds the command from the current state (most commands ignore it;
 * it lets a retry after a conflict decide on fresh facts).
 */
export const handleCommand = async (
  deps: CommandDeps,
  imageId: number,
  commandFor: StorageImageCommand | ((state: StorageImageState) => StorageImageCommand),
  ctx: CommandContext,
  options: CommandOptions = {},
): Promise<CommandResult> => {
  const streamId = streamIdOf(imageId);
  const retries = deps.maxConflictRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    const { version, state } = attempt === 0 && options.loaded ? options.loaded : await deps.events.load(streamId);
    const command = typeof commandFor === 'function' ? commandFor(state) : commandFor;
    const [event] = decide(command, state, ctx); // a command yields at most one event
    if (!event) return { version, state };
    const stateAfter = evolve(state, event);
    try {
      const stored = await deps.events.append(streamId, version, event, stateAfter);
      if (options.projectInline !== false) await projectNow(deps, stored);
      return { version: stored.version, state: stateAfter, appended: stored };
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      if (attempt >= retries) {
        throw new DomainError('concurrency_conflict', 'The storage image is changing concurrently; try again.');
      }
    }
  }
};

/**
 * Best effort: the event is stored, so the request succeeded whatever happens here;
 * the stream projector will bring the read model up to date if this write fails.
 */
const projectNow = async (deps: CommandDeps, stored: StoredEvent): Promise<void> => {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await deps.readModel.apply(stored);
      return;
    } catch (error) {
      if (attempt === 3) {
        deps.logger.warn('read model not updated inline; the stream projector will catch up', {
          streamId: stored.streamId,
          version: stored.version,
          error: String(error),
        });
      }
    }
  }
};
