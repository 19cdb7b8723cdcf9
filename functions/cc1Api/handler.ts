/**
 * The CC1-compatible API Lambda (SPEC 4.2): `POST /user/storage_image/<fn>/` and
 * `POST /admin_cm/storage_image/<fn>/`. Replies are HTTP 200 with CC1's envelope,
 * whatever the outcome, as CC1 answered; only a missing token is a 401.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DomainError } from '../../domain/errors';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { errorReply, httpStack, json, type HttpEvent, type HttpResult } from '../shared/http';
import { callerFromClaims } from '../shared/identity';
import { pathTrick, pathTrickMessage } from '../shared/pathSafety';
import { ADMIN_FUNCTIONS, USER_FUNCTIONS } from './cc1Functions';

useHosts(hostsOverSsm);
const logger = serviceLogger();

const PATH = /^\/(user|admin_cm)\/storage_image\/([a-z_]+)\/?$/;
/** The functions that run virsh on a hypervisor host (their timeouts are the host's). */
const HYPERVISOR_FUNCTIONS = /^\/user\/storage_image\/(attach|detach)\/?$/;

export const cc1Reply = (status: string, data: unknown): HttpResult => json(200, { status, data });

/** Refusals in CC1's form; only what is not the caller's doing keeps its HTTP status. */
const cc1ErrorReply = (error: unknown, log: Logger): HttpResult => {
  if (error instanceof DomainError) {
    if (error.code === 'unauthorized' || error.code === 'not_found') return errorReply(error, log);
    return cc1Reply(error.code, '');
  }
  const reply = errorReply(error, log);
  if (reply.statusCode === 409) return cc1Reply('idempotency_in_progress', '');
  if (reply.statusCode === 422) return cc1Reply('idempotency_key_reused', '');
  return reply.statusCode !== undefined && reply.statusCode < 500 ? cc1Reply('validation', '') : reply;
};

export const handler = httpStack(
  async (event: HttpEvent) => {
    // `get_list/../delete` names no function, whatever API Gateway made of it: 404, as for an unknown one.
    const trick = pathTrick(event.rawPath) ?? pathTrick(event.requestContext.http.path ?? '');
    if (trick) throw new DomainError('not_found', pathTrickMessage(trick));
    const m = PATH.exec(event.rawPath);
    const functions = m?.[1] === 'user' ? USER_FUNCTIONS : ADMIN_FUNCTIONS;
    if (!m || !Object.hasOwn(functions, m[2]!)) throw new DomainError('not_found', `No CC1 function at ${event.rawPath}.`);
    const { config, deps } = container();
    const claims = event.requestContext.authorizer?.jwt?.claims;
    if (!claims) throw new DomainError('unauthorized', 'A bearer token is required.');
    const caller = callerFromClaims(claims, config.userIdClaim);
    return cc1Reply('ok', await functions[m[2]!]!({ caller, body: event.body, deps }));
  },
  {
    logger,
    replyToError: cc1ErrorReply,
    idempotencyStore: () => container().idempotencyStore(),
    hypervisorWork: (event) => HYPERVISOR_FUNCTIONS.test(event.rawPath),
  },
);
