/**
 * Given / when / then for the StorageImage decider:
 *
 *   given([created(), diskReady()]).when(detach(), asOwner).then([detached(...)])
 *   given([]).when(create({ sizeMb: 0 }), asOwner).thenFails('image_invalid_size')
 *
 * `then` compares every field it accepts: type, data, cause, and time (which defaults
 * to the command's `now`, the only time the decider may stamp).
 */
import { DomainError, type ErrorCode } from '../../domain/errors';
import { decide, fold, type CommandContext, type NewEvent, type StorageImageCommand } from '../../domain/storageImage';

/** An expected event: what `then` compares, no more. */
export type ExpectedEvent = Pick<NewEvent, 'type' | 'data' | 'cause'> & { time?: string };

export const given = (history: NewEvent[]) => ({
  when: (command: StorageImageCommand, ctx: CommandContext) => {
    const run = () => decide(command, fold(history), ctx);
    return {
      then: (expected: ExpectedEvent[]) => {
        const events = run();
        expect(events.map(({ type, data, cause, time }) => ({ type, data, cause, time }))).toEqual(
          expected.map(({ type, data, cause, time }) => ({ type, data, cause, time: time ?? ctx.now })),
        );
        return events;
      },
      thenNothing: () => expect(run()).toEqual([]),
      thenFails: (code: ErrorCode, message?: RegExp) => {
        let error: unknown;
        try {
          run();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(DomainError);
        expect((error as DomainError).code).toBe(code);
        if (message) expect((error as DomainError).message).toMatch(message);
      },
    };
  },
});
