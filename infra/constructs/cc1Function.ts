import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/shared/config';

/** The repository root: entries, the lock file and tsconfig are found from here. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');


export interface Cc1FunctionProps {
  /** The folder under functions/: the entry is `functions/<name>/handler.ts`, exporting `handler`. */
  name: string;
  description: string;
  /** Environment (the ENV names of functions/shared/config.ts) on top of the Powertools ones. */
  environment: Record<string, string>;
  timeout: Duration;
  memorySize?: number;
  /** Reserved concurrency (the reconciler: 1, so runs never overlap); default: the account's pool. */
  reservedConcurrency?: number;
  /** X-Ray active tracing, with the Powertools Tracer on; off: the Tracer is switched off too. */
  tracing: boolean;
  /** The project holding functions/, package-lock.json and tsconfig.json (default: this repository). */
  projectRoot?: string;
}

/**
 * One Lambda function of the service, always built the same way: Node.js 22 on arm64,
 * bundled by the project's own esbuild (no Docker) with the AWS SDK v3 inside the
 * bundle (tree-shaken, minified, source maps on), its own log group with a retention,
 * and its own role that starts with nothing but writing to that log group.
 */
export class Cc1Function extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: Cc1FunctionProps) {
    super(scope, id);
    const root = props.projectRoot ?? PROJECT_ROOT;
    this.timeout = props.timeout;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An explicit role instead of the AWSLambdaBasicExecutionRole managed policy:
    // this function may write to its own log group and nowhere else.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${SERVICE_NAME} ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.fn = new NodejsFunction(this, 'Function', {
      entry: path.join(root, 'functions', props.name, 'handler.ts'),
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      projectRoot: root,
      depsLockFilePath: path.join(root, 'package-lock.json'),
      awsSdkConnectionReuse: false, // SDK v3 reuses connections by itself
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        // With X-Ray off, the Tracer is off too (it would otherwise still wrap every SDK call).
        POWERTOOLS_TRACE_ENABLED: String(props.tracing),
        ...props.environment,
      },
      bundling: {
        // The project's own esbuild (devDependency); never a Docker image.
        forceDockerBundling: false,
        format: OutputFormat.CJS,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // Bundle AWS SDK v3 (pinned by our lock file) rather than using the runtime's copy.
        bundleAwsSDK: true,
        externalModules: [],
        // Prefer ES modules so esbuild can tree-shake the SDK and middy.
        mainFields: ['module', 'main'],
        esbuildArgs: { '--tree-shaking': 'true' },
        tsconfig: path.join(root, 'tsconfig.json'),
      },
    });

    Validations.of(this.fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to nodejs22.x on purpose: the esbuild target (node22), the Powertools/middy versions and the tests are validated on Node 22 LTS; ' +
        'moving to a newer runtime is a deliberate upgrade, not something a synth should do silently.',
    });

    if (props.tracing) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions, so the Resource must be *.',
      });
    }
  }
}
