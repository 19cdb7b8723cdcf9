import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { RouteDef } from '../../functions/shared/routeTable';
import { iteratorAge, serviceMetric } from './alarms';

export interface DashboardProps {
  stage: apigwv2.HttpStage;
  /** Every route of the API, for the per-route latency graphs (needs the stage's detailed metrics). */
  routes: { rest: readonly RouteDef[]; cc1: readonly RouteDef[] };
  functions: lambda.IFunction[];
  /** Stream consumers whose lag is shown. */
  streamConsumers: Record<string, lambda.IFunction>;
}

const PERIOD = Duration.minutes(5);

/**
 * The service's golden signals on one CloudWatch dashboard: traffic, errors and p99
 * latency of the API (per route), attach/detach outcomes, stream lag, reconciler
 * repairs. docs/deploy.md says how to read it.
 */
export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const { stage } = props;
    const routeLatency = (routes: readonly RouteDef[]) =>
      routes.map(
        (r) =>
          new cloudwatch.Metric({
            namespace: 'AWS/ApiGateway',
            metricName: 'Latency',
            dimensionsMap: { ApiId: stage.api.apiId, Stage: stage.stageName, Method: r.method, Resource: r.path },
            statistic: cloudwatch.Stats.p(99),
            period: PERIOD,
            label: `${r.method} ${r.path}`,
          }),
      );
    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) => new cloudwatch.GraphWidget({ title, left, width, height: 6 });
    const total = (name: string) => serviceMetric(name, PERIOD).with({ label: name });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-golden-signals`,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph('Requests', [stage.metricCount({ period: PERIOD, statistic: cloudwatch.Stats.SUM, label: 'requests' })]),
          graph('API errors', [
            stage.metricClientError({ period: PERIOD, statistic: cloudwatch.Stats.SUM, label: '4xx' }),
            stage.metricServerError({ period: PERIOD, statistic: cloudwatch.Stats.SUM, label: '5xx' }),
          ]),
          graph(
            'Function errors',
            props.functions.map((fn) => fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM, label: fn.node.scope!.node.id })),
          ),
        ],
        [graph('p99 latency per route: REST API (ms)', routeLatency(props.routes.rest), 12), graph('p99 latency per route: CC1 API (ms)', routeLatency(props.routes.cc1), 12)],
        [
          graph('Attach outcomes', ['AttachSucceeded', 'AttachFailed', 'DetachSucceeded', 'DetachFailed', 'AutoDetached'].map(total)),
          graph(
            'Stream lag: iterator age (ms)',
            Object.entries(props.streamConsumers).map(([label, fn]) => iteratorAge(fn).with({ label })),
          ),
          graph('Reconciler repairs', [total('ReconcilerRepair')]),
        ],
      ],
    });
  }
}
