/**
 * The scheduled reconciler: records vs `virsh domblklist` of each running VM, repairing
 * what a crash between a host command and its outcome left behind. (The quota ledger
 * needs no repair: it is written in the same transactions as the events.) A run starts
 * no new host when its remaining time runs short, and resumes next time where this one
 * stopped (the cursor in the control table).
 */
import type { Context } from 'aws-lambda';
import { reconcile } from '../../application/reconciler';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { observedHandler } from '../shared/observability';

useHosts(hostsOverSsm);
const logger = serviceLogger();

export const handler = observedHandler(logger, async (_event: unknown, context: Context) => {
  const { deps, reconcilerCursor } = container();
  const report = await reconcile(deps, { cursor: reconcilerCursor, remainingTimeMs: () => context.getRemainingTimeInMillis() });
  logger.info('reconciled', {
    vmsChecked: report.vmsChecked,
    hostsUnreachable: report.hostsUnreachable,
    hostsSkipped: report.hostsSkipped,
    repairs: report.repairs.length,
    resumedAfter: report.resumedAfter,
    hostsNotStarted: report.hostsNotStarted,
    cursor: report.cursor,
  });
  return report;
}, 'id');
