/**
 * The scheduled reconciler: records vs `virsh domblklist` of each running VM, repairing
 * what a crash between a host command and its outcome left behind. (The quota ledger
 * needs no repair: it is written in the same transactions as the events.)
 */
import { reconcile } from '../../application/reconciler';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { observedHandler } from '../shared/observability';

useHosts(hostsOverSsm);
const logger = serviceLogger();

export const handler = observedHandler(logger, async () => {
  const { deps } = container();
  const report = await reconcile(deps);
  logger.info('reconciled', { vmsChecked: report.vmsChecked, hostsUnreachable: report.hostsUnreachable, hostsSkipped: report.hostsSkipped, repairs: report.repairs.length });
  return report;
}, 'id');
