/**
 * The scheduled reconciler (every few minutes): records vs `virsh domblklist` of
 * each running VM, repairs what a crash left behind.
 */
import { reconcile } from '../../application/reconciler';
import { container, serviceLogger } from '../shared/container';

const logger = serviceLogger();

export const handler = async () => {
  const report = await reconcile(container().deps);
  logger.info('reconciled', { vmsChecked: report.vmsChecked, hostsUnreachable: report.hostsUnreachable, repairs: report.repairs.length });
  return report;
};
