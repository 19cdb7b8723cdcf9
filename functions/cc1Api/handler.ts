/**
 * The CC1-compatible API Lambda (SPEC 4.2): `POST /user/storage_image/<fn>/`,
 * `POST /admin_cm/storage_image/<fn>/` and `POST /user/user/check_quota/`. Replies are HTTP 200 with CC1's envelope,
 * whatever the outcome, as CC1 answered; only a missing token is a 401.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DomainError } from '../../domain/errors';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import type { Context } from 'aws-lambda';
import { errorReply, httpRouter, httpStack, json, type HttpEvent, type HttpResult } from '../shared/http';
import { CC1_ROUTES, type Cc1RouteDef } from '../shared/routeTable';
import { ADMIN_FUNCTIONS, USER_ACCOUNT_FUNCTIONS, USER_FUNCTIONS, type Cc1Function } from './cc1Functions';
import { pathTrick, pathTrickMessage } from '../shared/pathSafety';

useHosts(hostsOverSsm);
const logger = serviceLogger();

/** The functions that run virsh on a hypervisor host (their timeouts are the host's). */
const HYPERVISOR_FUNCTIONS = /^\/user\/storage_image\/(attach|detach)\/?$/;

export const cc1Reply = (status: string, data: unknown): HttpResult => json(200, { status, data });

/** CC1's status for a failure that is not the caller's doing: an internal error, a timeout, a host that did not answer. */
export const CC1_INTERNAL_FAILURE = 'cm_error';

/**
 * Every outcome in CC1's form, HTTP 200 (as CC1's views answered), but for what API
 * Gateway answers before a CC1 view would run: a missing token (401), an unknown function (404).
 * A refusal carries its CC1 code in `status`; anything the caller cannot fix (an
 * unexpected error, a timeout, a host that did not answer: a 5xx in the REST API) is
 * `cm_error`, with the reason in `data` (the REST code first: `timeout: ...`).
 */
export const cc1ErrorReply = (error: unknown, log: Logger): HttpResult => {
  if (error instanceof DomainError) {
    if (error.code === 'unauthorized' || error.code === 'not_found') return errorReply(error, log);
    if (error.httpStatus >= 500) return cc1Reply(CC1_INTERNAL_FAILURE, `${error.code}: ${error.message}`);
    return cc1Reply(error.code, '');
  }
  const reply = errorReply(error, log);
  const status = reply.statusCode ?? 500;
  if (status === 409) return cc1Reply('idempotency_in_progress', '');
  if (status === 422) return cc1Reply('idempotency_key_reused', '');
  if (status < 500) return cc1Reply('validation', '');
  const { code, message } = (JSON.parse(String(reply.body ?? '{}')) as { error?: { code?: string; message?: string } }).error ?? {};
  return cc1Reply(CC1_INTERNAL_FAILURE, `${code ?? 'internal'}: ${message ?? 'Internal error.'}`);
};

const FUNCTIONS: Record<`${Cc1RouteDef['scope']}/${Cc1RouteDef['module']}`, Record<string, Cc1Function>> = {
  'user/storage_image': USER_FUNCTIONS,
  'admin_cm/storage_image': ADMIN_FUNCTIONS,
  'user/user': USER_ACCOUNT_FUNCTIONS,
  'admin_cm/user': {},
};

const router = httpRouter(
  CC1_ROUTES.map((route) => ({
    ...route,
    handler: async (event, { caller, deps, writeKey }) =>
      cc1Reply('ok', await FUNCTIONS[`${route.scope}/${route.module}`][route.fn]!({ caller, body: event.body, deps, ...(writeKey ? { writeKey } : {}) })),
  })),
  (_method, path) => `No CC1 function at ${path}.`,
);

export const handler = httpStack(
  async (event: HttpEvent, context: Context) => {
    // `get_list/../delete` names no function, whatever API Gateway made of it: 404, as for an unknown one.
    const trick = pathTrick(event.rawPath) ?? pathTrick(event.requestContext.http.path ?? '');
    if (trick) throw new DomainError('not_found', pathTrickMessage(trick));
    return router(event, context);
  },
  {
    logger,
    replyToError: cc1ErrorReply,
    idempotencyStore: () => container().idempotencyStore(),
    hypervisorWork: (event) => HYPERVISOR_FUNCTIONS.test(event.rawPath),
  },
);
