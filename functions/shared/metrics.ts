/**
 * Attach/detach outcomes and projection lag as CloudWatch metrics (Powertools
 * Metrics, embedded metric format in the logs: no API call at run time). Flushed by
 * the `logMetrics` middleware of every handler (functions/shared/observability.ts).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Metrics as MetricsPort } from '../../application/storageImages';
import { METRICS_NAMESPACE, SERVICE_NAME } from './config';

type MetricsLogger = NonNullable<NonNullable<ConstructorParameters<typeof Metrics>[0]>['logger']>;

/**
 * Powertools warns on every flush that holds no metric, which is most API requests
 * here (only attach/detach outcomes and the projector add any): expected, not worth a
 * log line per request. Its other warnings (a metric or dimension CloudWatch would drop) stay.
 */
const withoutEmptyFlushWarning: MetricsLogger = {
  trace: console.trace,
  debug: console.debug,
  info: console.info,
  error: console.error,
  warn: (...args: unknown[]) => {
    if (!String(args[0]).startsWith('No application metrics to publish')) console.warn(...args);
  },
};

export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
  logger: withoutEmptyFlushWarning,
});

/**
 * Each count twice: its total (the `service` dimension only: what the alarms and the
 * dashboard read) and, when it has any, its breakdown (kind, mode) for diagnosis.
 * CloudWatch keeps a metric per dimension set, so the total cannot be summed later.
 */
export const metricsPort = (): MetricsPort => ({
  count(name, dimensions) {
    metrics.singleMetric().addMetric(name, MetricUnit.Count, 1);
    if (!dimensions || Object.keys(dimensions).length === 0) return;
    const breakdown = metrics.singleMetric();
    for (const [key, value] of Object.entries(dimensions)) breakdown.addDimension(key, value);
    breakdown.addMetric(name, MetricUnit.Count, 1);
  },
});
