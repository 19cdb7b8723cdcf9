/**
 * EventBridge -> VM directory and auto-detach (SPEC 4.3). At-least-once delivery and
 * reordering are absorbed by the VM record's time guard and by idempotent detaches.
 * A malformed event fails the invocation; Lambda's on-failure destination keeps it
 * with the reason (the dead-letter path).
 */
import { onVmStateChange } from '../../application/storageImages';
import { container, serviceLogger } from '../shared/container';
import { observedHandler } from '../shared/observability';
import { parseVmEvent, type VmEventEnvelope } from './vmStateEvent';

const logger = serviceLogger();

export const handleVmEvent = async (event: VmEventEnvelope) => {
  const { change, reason } = parseVmEvent(event);
  const result = await onVmStateChange(container().deps, { ...change, ...(reason ? { reason } : {}) });
  logger.info('vm state change', { vmId: change.vmId, state: change.state, reason, applied: result.applied, detached: result.detached });
  return result;
};

export const handler = observedHandler(logger, handleVmEvent, 'id');
