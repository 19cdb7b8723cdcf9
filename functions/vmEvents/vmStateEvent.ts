/**
 * The `VM State Change` event that hypervisor hosts put on the bus (SPEC 4.3):
 * source `cc1.hypervisor`, detail {vmId, userId, domain: "vm-<vmId>-<userId>",
 * hostId, state, reason?, time?}. `time` (ISO, milliseconds) is when the host saw the
 * change; it orders redeliveries. Without it, EventBridge's own `time` is used.
 */
// zod/mini, not zod: this function's only schema, and the classic API would add
// ~440 KB to the bundle (a cold-start cost; see docs/benchmarks.md, figure 6).
import * as z from 'zod/mini';
import { en } from 'zod/locales';
import type { VmStateChange } from '../../application/storePorts';
import { DOMAIN_NAME } from '../../domain/ids';
import { id } from '../shared/input';
import { DomainError } from '../../domain/errors';
import { PATTERNS } from '../../adapters/ssm/patterns';

z.config(en()); // mini carries no messages by default: the same English ones as the classic API


export const VM_EVENT_SOURCE = 'cc1.hypervisor';
export const VM_EVENT_DETAIL_TYPE = 'VM State Change';

const detailSchema = z
  .object({
    vmId: id,
    userId: id,
    domain: z.string().check(z.regex(new RegExp(`^${DOMAIN_NAME}$`))),
    hostId: z.string().check(z.regex(new RegExp(PATTERNS.managedInstanceId))),
    state: z.enum(['running', 'stopped']),
    reason: z.optional(z.string().check(z.regex(/^[a-z][a-z0-9_-]{0,31}$/))),
    time: z.optional(z.iso.datetime({ offset: true })),
  })
  .check(z.refine((d) => d.domain === `vm-${d.vmId}-${d.userId}`, { message: 'domain must be vm-<vmId>-<userId>' }));

export interface VmEventEnvelope {
  source?: unknown;
  'detail-type'?: unknown;
  time?: unknown;
  detail?: unknown;
}

/** A bad event: not retried; it goes to the dead-letter path with this reason. */
export class BadVmEventError extends DomainError {
  constructor(reason: string) {
    super('validation', `bad VM State Change event: ${reason}`);
    this.name = 'BadVmEventError';
  }
}

export const parseVmEvent = (event: VmEventEnvelope): { change: VmStateChange; reason?: string } => {
  if (event.source !== VM_EVENT_SOURCE || event['detail-type'] !== VM_EVENT_DETAIL_TYPE) {
    throw new BadVmEventError(`unexpected source/detail-type ${JSON.stringify([event.source, event['detail-type']])}`);
  }
  const parsed = detailSchema.safeParse(event.detail);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadVmEventError(`${issue.path.join('.') || 'detail'}: ${issue.message}`);
  }
  const d = parsed.data;
  const time = d.time ?? (typeof event.time === 'string' ? event.time : undefined);
  if (!time || Number.isNaN(Date.parse(time))) throw new BadVmEventError('no usable time');
  return {
    change: { vmId: d.vmId, userId: d.userId, domain: d.domain, hostId: d.hostId, state: d.state, time: new Date(time).toISOString() },
    ...(d.reason ? { reason: d.reason } : {}),
  };
};
