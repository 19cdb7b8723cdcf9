/**
 * Attach/detach outcomes and projection lag as CloudWatch metrics (Powertools
 * Metrics, embedded metric format in the logs: no API call at run time).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Metrics as MetricsPort } from '../../application/storageImages';

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'CC1StorageImages',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cc1-storage-images',
});

export const metricsPort = (): MetricsPort => ({
  count(name, dimensions) {
    const single = metrics.singleMetric();
    for (const [key, value] of Object.entries(dimensions ?? {})) single.addDimension(key, value);
    single.addMetric(name, MetricUnit.Count, 1);
  },
});
