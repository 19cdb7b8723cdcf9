/**
 * The correlation id of the work in progress, carried across awaits by AsyncLocalStorage
 * (per request even when the local stack serves several at once): the API request's id,
 * written on every event the request appends, and taken up again by each stream
 * reaction to that event, so one id follows a request to the host commands it causes.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../../application/logger';

const current = new AsyncLocalStorage<string>();

export const withCorrelationId = <T>(id: string | undefined, work: () => Promise<T>): Promise<T> => (id ? current.run(id, work) : work());

export const currentCorrelationId = (): string | undefined => current.getStore();

/** Every line logged through it carries `correlation_id` while there is one. */
export const correlatedLogger = (logger: Logger): Logger => {
  const withId = (extra: Record<string, unknown>[]) => {
    const id = current.getStore();
    return id ? [{ correlation_id: id }, ...extra] : extra;
  };
  return {
    debug: (message, ...extra) => logger.debug(message, ...withId(extra)),
    info: (message, ...extra) => logger.info(message, ...withId(extra)),
    warn: (message, ...extra) => logger.warn(message, ...withId(extra)),
    error: (message, ...extra) => logger.error(message, ...withId(extra)),
  };
};
