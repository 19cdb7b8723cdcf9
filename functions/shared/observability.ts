/**
 * What every function wraps its handler in: X-Ray tracing (Powertools Tracer), the
 * Lambda context and a correlation id in every log line (Powertools Logger), and the
 * metrics flushed at the end of each invocation with a ColdStart metric (Powertools
 * Metrics). Outside Lambda (the local stack, jest) the Tracer switches itself off
 * (no AWS_EXECUTION_ENV, or POWERTOOLS_TRACE_ENABLED=false), and metrics are off
 * through POWERTOOLS_METRICS_DISABLED.
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Context } from 'aws-lambda';
import { SERVICE_NAME } from './config';
import { metrics } from './metrics';

export const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });

/** The observability middlewares, outermost first. `correlationIdPath`: a JMESPath into the event. */
export const observability = (logger: Logger, correlationIdPath?: string): MiddlewareObj[] => [
  // Replies may carry user data and grow past a segment's size: not recorded.
  captureLambdaHandler(tracer, { captureResponse: false }),
  injectLambdaContext(logger, { resetKeys: true, ...(correlationIdPath ? { correlationIdPath } : {}) }),
  logMetrics(metrics, { captureColdStartMetric: true }),
];

/** A non-HTTP handler (stream, EventBridge, schedule) with the observability middlewares. */
export const observedHandler = <E, R>(logger: Logger, handler: (event: E, context: Context) => Promise<R>, correlationIdPath?: string) =>
  middy<E, R>()
    .use(observability(logger, correlationIdPath))
    .handler(handler);
