/**
 * Given / when / then for the StorageImage decider:
 *
 *   given([created(), diskReady()]).when(detach(), asOwner).then([detached(...)])
 *   given([]).when(create({ sizeMb: 0 }), asOwner).thenFails('image_invalid_size')
 */
import { DomainError, type ErrorCode } from '../../domain/errors';
import { decide, fold, type CommandContext, type NewEvent, type StorageImageCommand } from '../../domain/storageImage';

export const given = (history: NewEvent[]) => ({
  when: (command: StorageImageCommand, ctx: CommandContext) => {
    const run = () => decide(command, fold(history), ctx);
    return {
      then: (expected: Array<Pick<NewEvent, 'type' | 'data'> & Partial<NewEvent>>) => {
        const events = run();
        expect(events.map(({ type, data }) => ({ type, data }))).toEqual(expected.map(({ type, data }) => ({ type, data })));
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
