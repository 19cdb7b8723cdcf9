/**
 * The scheduled reconciler. Every few minutes: records vs `virsh domblklist` of each
 * running VM, repairing what a crash left behind. Daily (`{"task": "quota"}`): every
 * user's quota ledger reset to what the event log says, which repairs a reservation
 * left by a create that crashed before its Created event. (A create in flight at the
 * very instant of the reset may lose its reservation until the next daily run.)
 */
import { rebuildQuotaLedgers } from '../../adapters/dynamodb/rebuild';
import { DynamoQuotaLedger } from '../../adapters/dynamodb/quotaLedger';
import { reconcile } from '../../application/reconciler';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { observedHandler } from '../shared/observability';

useHosts(hostsOverSsm);
const logger = serviceLogger();

export const handler = observedHandler(logger, async (event: { task?: string } = {}) => {
  const { deps } = container();
  if (event.task === 'quota' && deps.quota instanceof DynamoQuotaLedger) {
    const changed = await rebuildQuotaLedgers(deps.events, deps.quota);
    logger.info('quota ledgers reconciled', { usersChanged: changed.length });
    return { usersChanged: changed };
  }
  const report = await reconcile(deps);
  logger.info('reconciled', { vmsChecked: report.vmsChecked, hostsUnreachable: report.hostsUnreachable, repairs: report.repairs.length });
  return report;
}, 'id');
