import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer, HttpUserPoolAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable } from '../adapters/dynamodb/tables';
import { STATE_OR_ATTACHMENT_CHANGES } from '../application/changeNotifications';
import { DISK_FILE_EVENT_TYPES } from '../application/diskFiles';
import { CHANGE_EVENT_BUS_ENV } from '../functions/changeNotifications/busName';
import { DOCUMENTS, type DocumentKey } from '../adapters/ssm/documents';
import { ENV, RECONCILE_EVERY_MINUTES } from '../functions/shared/config';
import { readDeployConfig, vmEventsArchiveName, vmStateChangeRuleName, type DeployConfig } from './config';
import { nagArn } from './nag';
import { Alarms, serviceMetric } from './constructs/alarms';
import { Dashboard } from './constructs/dashboard';
import { Cc1Function } from './constructs/cc1Function';
import { DataAccess } from './constructs/dataAccess';
import { DeadLetterQueue } from './constructs/deadLetterQueue';
import { grantHostCommands } from './constructs/hostAccess';
import { SsmDocuments } from './constructs/ssmDocuments';
import { tableFromDefinition } from './constructs/tables';
import { CC1_ROUTES, REST_ROUTES, type RouteDef } from '../functions/shared/routeTable';

export interface StorageImagesStackProps extends StackProps {
  /** Settings; read from CDK context when absent (see infra/config.ts, docs/deploy.md). */
  config?: DeployConfig;
  /** The project holding functions/<name>/handler.ts (default: this repository). */
  projectRoot?: string;
}

/** Every runtime setting of functions/shared/config.ts except the local-only endpoints. */
type DeployedSetting = Exclude<keyof typeof ENV, 'ssmEndpoint' | 'dynamodbEndpoint'>;

/** The event types that make or remove a disk file (the diskFiles function's stream filter; the redrive's too). */
export { DISK_FILE_EVENT_TYPES };

/** The DynamoDB event source adds dynamodb:ListStreams on "*" to the consumer's role. */
const acknowledgeListStreams = (f: Cc1Function): void =>
  Validations.of(f.role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'dynamodb:ListStreams (added by the DynamoDB Streams event source mapping) has no resource-level permissions; ' +
      'reading records (GetRecords, GetShardIterator, DescribeStream) stays limited to the events table stream ARN.',
  });

/**
 * Documents each caller may run: hypervisor work for the APIs (and the storage hosts'
 * tool report, for GET /filesystems and refusing a filesystem at create), file work
 * for diskFiles, all for the reconciler.
 */
const API_DOCUMENTS: DocumentKey[] = ['attachDisk', 'detachDisk', 'listDisks', 'storageTools'];
/** The REST API also grows disks (POST /storage-images/{id}/resize): live, or the file. */
const REST_DOCUMENTS: DocumentKey[] = [...API_DOCUMENTS, 'blockResize', 'resizeDiskFile'];
const STORAGE_DOCUMENTS: DocumentKey[] = ['storageFreeSpace', 'createDiskFile', 'deleteDiskFile'];

/**
 * The whole service in one stack; it reads top to bottom like the README's picture:
 *
 *   portal --JWT--> HTTP API --> restApi / cc1Api --append--> events table
 *   events table --stream--> projector --> images read model
 *   events table --stream (Created/Revoked)--> diskFiles --SSM--> storage host
 *   events table --stream (state/attachment changes)--> changeNotifications --> bus "Storage Image Change"
 *   restApi / cc1Api --SSM Run Command--> hypervisor hosts (virsh)
 *   hypervisor hosts --EventBridge "VM State Change"--> vmEvents --> auto-detach
 *   every 5 minutes --> reconciler (records vs. hosts); daily --> reconciler (quota ledgers)
 *   hypervisor bus --> archive (replay: npm run ops -- replay-vm-events)
 *   alarms --> SNS; golden signals --> CloudWatch dashboard
 */
export class StorageImagesStack extends Stack {
  readonly config: DeployConfig;

  constructor(scope: Construct, id: string, props: StorageImagesStackProps = {}) {
    super(scope, id, {
      description: 'CC1 Storage Images: event-sourced disk volumes for the CC1 private cloud',
      ...props,
    });
    const config = props.config ?? readDeployConfig((key) => this.node.tryGetContext(key));
    this.config = config;
    if (config.storageHostId === '' && config.storages.length === 0) {
      Annotations.of(this).addWarningV2(
        'cc1:storageHostId',
        'context storageHostId is not set: disk files cannot be made until it names the storage host (see docs/deploy.md).',
      );
    }

    // ---- 1. Event store and read models (definitions: adapters/dynamodb/tables.ts) ----
    const eventsTable = tableFromDefinition(this, 'EventsTable', config.tablePrefix, EVENTS_TABLE);
    const controlTable = tableFromDefinition(this, 'ControlTable', config.tablePrefix, CONTROL_TABLE);
    const imagesTables = config.imagesTableVersions.map((n) =>
      tableFromDefinition(this, `ImagesTableV${n}`, config.tablePrefix, imagesTable(n)),
    );

    // ---- 2. Hypervisor commands (definitions: adapters/ssm/documents) ----
    const documents = new SsmDocuments(this, 'SsmDocuments');
    const allDocuments = Object.keys(DOCUMENTS) as DocumentKey[];
    const hostTag = { key: config.hostTagKey, values: config.hostTagValues };

    // ---- 3. Functions: every one gets the same runtime settings (functions/shared/config.ts) ----
    // Typed by the ENV map: a setting added there and not set here fails the type check.
    const settings: Record<DeployedSetting, string> = {
      tablePrefix: config.tablePrefix,
      userIdClaim: config.userIdClaim,
      defaultQuotaMb: String(config.defaultQuotaMb),
      maxDisksPerVm: String(config.maxDisksPerVm),
      hostCommandTimeoutMs: String(config.hostCommandTimeoutMs),
      hostCommandPollMs: String(config.hostCommandPollMs),
      storagePath: config.storagePath,
      storageHostId: config.storageHostId,
      // '' = unset: the single storage above.
      storages: config.storages.length ? JSON.stringify(config.storages) : '',
      ssmDocumentNames: documents.namesJson(allDocuments),
    };
    const runtimeEnvironment = Object.fromEntries(
      (Object.keys(settings) as DeployedSetting[]).map((key) => [ENV[key], settings[key]]),
    );
    const fn = (name: string, description: string, timeout: Duration, memorySize = 512, reservedConcurrency?: number) =>
      new Cc1Function(this, name.charAt(0).toUpperCase() + name.slice(1), {
        name,
        description,
        timeout,
        memorySize,
        reservedConcurrency,
        environment: runtimeEnvironment,
        tracing: config.xrayTracing,
        projectRoot: props.projectRoot,
      });
    // API Gateway gives up at 30 s; the handlers bound hypervisor commands below that.
    const restApi = fn('restApi', 'CC1 storage images: REST API (SPEC 4.1)', Duration.seconds(29));
    const cc1Api = fn('cc1Api', 'CC1 storage images: CC1-compatible API (SPEC 4.2)', Duration.seconds(29));
    const vmEvents = fn('vmEvents', 'CC1 storage images: VM State Change events, auto-detach', Duration.seconds(60), 256);
    const projector = fn('projector', 'CC1 storage images: events stream to read models', Duration.seconds(60), 256);
    const diskFiles = fn('diskFiles', 'CC1 storage images: make and remove disk files on the storage host', Duration.minutes(15), 256);
    const changeNotifications = fn('changeNotifications', 'CC1 storage images: Storage Image Change notifications onto the bus', Duration.seconds(30), 256);
    // Reserved concurrency 1: a run that outlasts the five-minute schedule is never overlapped by the next one.
    const reconciler = fn('reconciler', 'CC1 storage images: repair records against the hosts', Duration.minutes(5), 512, 1);

    // ---- 4. Data access: each function gets the actions it uses, table by table ----
    // The event log is append-only by IAM: PutItem (conditional) and ConditionCheckItem,
    // never UpdateItem, DeleteItem or BatchWriteItem. A command is one TransactWriteItems
    // (event Put, stream head Update, read-model row Put, device claim / quota Update),
    // which IAM checks per item: there is no TransactWriteItems action to grant.
    const data = new DataAccess(this, { events: eventsTable, control: controlTable, imagesPrefix: config.tablePrefix });
    for (const f of [restApi, cc1Api]) data.grant(f, { events: 'command', control: 'commandWithIdempotency', images: 'readWrite' });
    for (const f of [vmEvents, diskFiles]) data.grant(f, { events: 'command', control: 'command', images: 'readWrite' });
    // The reconciler also reads the whole log (quota ledgers) and every VM record.
    data.grant(reconciler, { events: 'commandAndScan', control: 'commandAndScan', images: 'readWrite' });
    // The projector: history reads to fill a version gap, which images generation is in use.
    data.grant(projector, { events: 'read', control: 'read', images: 'readWrite' });

    grantHostCommands(restApi.role, documents, REST_DOCUMENTS, hostTag);
    grantHostCommands(cc1Api.role, documents, API_DOCUMENTS, hostTag);
    grantHostCommands(diskFiles.role, documents, STORAGE_DOCUMENTS, hostTag);
    grantHostCommands(reconciler.role, documents, allDocuments, hostTag);

    // ---- 5. Event store stream -> projector and diskFiles ----
    // Every consumer of the log's stream: Lambda's mapping with partial batches, bisect,
    // bounded retries and a dead-letter queue; only INSERTs (the log is append-only), and
    // of those the event types the consumer reacts to, when it names them.
    const streamSource = (dlq: DeadLetterQueue, options: { batchSize: number; eventTypes?: readonly string[]; parallelizationFactor?: number }) =>
      new DynamoEventSource(eventsTable, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: options.batchSize,
        ...(options.batchSize > 1 ? { maxBatchingWindow: Duration.seconds(1) } : {}),
        ...(options.parallelizationFactor ? { parallelizationFactor: options.parallelizationFactor } : {}),
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: 10,
        maxRecordAge: Duration.hours(24),
        onFailure: new SqsDlq(dlq.queue),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('INSERT'),
            ...(options.eventTypes ? { dynamodb: { NewImage: { type: { S: lambda.FilterRule.or(...options.eventTypes) } } } } : {}),
          }),
        ],
      });
    const projectorDlq = new DeadLetterQueue(this, 'ProjectorDlq', { purpose: 'stream batches the projector gave up on' });
    projector.fn.addEventSource(streamSource(projectorDlq, { batchSize: 100 }));
    acknowledgeListStreams(projector);

    const diskFilesDlq = new DeadLetterQueue(this, 'DiskFilesDlq', { purpose: 'disk file events that could not be handled' });
    // One disk file per invocation: mkfs of a big disk takes minutes.
    diskFiles.fn.addEventSource(streamSource(diskFilesDlq, { batchSize: 1, parallelizationFactor: 10, eventTypes: DISK_FILE_EVENT_TYPES }));
    acknowledgeListStreams(diskFiles);

    // Change notifications (SPEC 4.7): only the event types that change an image's state or attachment.
    const changeNotificationsDlq = new DeadLetterQueue(this, 'ChangeNotificationsDlq', { purpose: 'change notifications that could not be published' });
    changeNotifications.fn.addEventSource(streamSource(changeNotificationsDlq, { batchSize: 100, eventTypes: STATE_OR_ATTACHMENT_CHANGES }));
    acknowledgeListStreams(changeNotifications);

    // ---- 6. HTTP API behind a JWT authorizer (no route without it) ----
    const authorizer = this.jwtAuthorizer(config);
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const api = new apigwv2.HttpApi(this, 'Api', {
      apiName: 'cc1-storage-images',
      description: 'CC1 storage images: REST API and CC1-compatible API',
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
      // Browser portals only: preflight is answered by API Gateway, without the authorizer.
      ...(config.corsAllowOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins: config.corsAllowOrigins,
              allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.PUT, apigwv2.CorsHttpMethod.PATCH, apigwv2.CorsHttpMethod.DELETE],
              allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
              maxAge: Duration.hours(1),
            },
          }
        : {}),
    });
    const stage = new apigwv2.HttpStage(this, 'ApiStage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.apiRateLimit, burstLimit: config.apiBurstLimit },
      // Per-route metrics (Method, Resource) for the dashboard's p99 per route.
      detailedMetricsEnabled: true,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            integrationStatus: '$context.integrationStatus',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
            subject: '$context.authorizer.claims.sub',
            idempotencyKey: '$request.header.idempotency-key',
          }),
        ),
      },
    });
    this.addRoutes(api, REST_ROUTES, new HttpLambdaIntegration('RestApiIntegration', restApi.fn));
    this.addRoutes(api, CC1_ROUTES, new HttpLambdaIntegration('Cc1ApiIntegration', cc1Api.fn));

    // ---- 7. VM state events from the hypervisor hosts -> vmEvents (auto-detach) ----
    const bus = new events.EventBus(this, 'HypervisorBus', { eventBusName: config.eventBusName });
    // Every VM event is kept, so a bug's victims can be replayed (`npm run ops -- replay-vm-events`).
    const archive = bus.archive('VmEventsArchive', {
      archiveName: vmEventsArchiveName(config.eventBusName),
      description: 'VM State Change events from the hypervisor hosts, for replay after a bug (docs/deploy.md)',
      eventPattern: { source: ['cc1.hypervisor'] },
      retention: Duration.days(config.vmEventsArchiveDays),
    });
    const vmEventsDlq = new DeadLetterQueue(this, 'VmEventsDlq', { purpose: 'VM State Change events that could not be delivered or handled' });
    const vmStateChangeRule = new events.Rule(this, 'VmStateChangeRule', {
      eventBus: bus,
      ruleName: vmStateChangeRuleName(config.eventBusName),
      description: 'VM State Change from the hypervisor hosts (libvirt qemu hook -> host/sender)',
      eventPattern: { source: ['cc1.hypervisor'], detailType: ['VM State Change'] },
      targets: [new targets.LambdaFunction(vmEvents.fn, { retryAttempts: 10, maxEventAge: Duration.hours(24), deadLetterQueue: vmEventsDlq.queue })],
    });
    // EventBridge invokes asynchronously: a handler error is retried by Lambda, then dead-lettered.
    vmEvents.fn.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.hours(6), onFailure: new SqsDestination(vmEventsDlq.queue) });
    // Storage Image Change notifications go onto the same bus: events:PutEvents on it, nothing else.
    changeNotifications.fn.addEnvironment(CHANGE_EVENT_BUS_ENV, bus.eventBusName);
    bus.grantPutEventsTo(changeNotifications.fn);

    // ---- 8. The reconciler: records vs. hosts every five minutes (the quota ledger needs none: it is transactional) ----
    new events.Rule(this, 'ReconcileSchedule', {
      description: 'Run the reconciler: records against the hosts (virsh domblklist), repairs of interrupted commands',
      schedule: events.Schedule.rate(Duration.minutes(RECONCILE_EVERY_MINUTES)),
      targets: [new targets.LambdaFunction(reconciler.fn, { retryAttempts: 0 })],
    });
    reconciler.fn.configureAsyncInvoke({ retryAttempts: 0 }); // the next run comes in five minutes

    // ---- 9. What the hosts need: put VM events, be managed by SSM ----
    const hostRole = this.hostRole(bus);

    // ---- 10. Alarms -> SNS, and the dashboard (docs/deploy.md says what each means) ----
    const alarms = new Alarms(this, 'Alarms', { email: config.alarmEmail });
    const functions = [restApi, cc1Api, vmEvents, projector, diskFiles, changeNotifications, reconciler];
    for (const f of functions) {
      alarms.functionErrors(f.fn);
      alarms.throttles(f.fn);
      alarms.durationNearTimeout(f.fn, f.timeout);
    }
    for (const q of [projectorDlq, diskFilesDlq, changeNotificationsDlq, vmEventsDlq]) alarms.queueNotEmpty(q.queue);
    alarms.streamLag('ProjectionLag', projector.fn, Duration.seconds(config.projectionLagAlarmSeconds), 'The read models are');
    alarms.streamLag('DiskFilesLag', diskFiles.fn, Duration.seconds(config.diskFilesLagAlarmSeconds), 'Disk file work (make, remove) is');
    alarms.streamLag('ChangeNotificationsLag', changeNotifications.fn, Duration.seconds(config.changeNotificationsLagAlarmSeconds), 'Change notifications to portals are');
    alarms.api5xx(stage);
    const quarterHour = Duration.minutes(15);
    // Only hot attaches run virsh (and can fail); boot-time attaches are records only.
    const hotAttaches = serviceMetric('AttachSucceeded', quarterHour, { mode: 'hot' });
    alarms.failureRate('AttachFailureRate', serviceMetric('AttachFailed', quarterHour), hotAttaches, config.attachFailurePercentAlarm, 'hot attaches');
    alarms.failureRate('DetachFailureRate', serviceMetric('DetachFailed', quarterHour), serviceMetric('DetachSucceeded', quarterHour), config.detachFailurePercentAlarm, 'detaches');
    alarms.countReached(
      'ReconcilerRepairs',
      serviceMetric('ReconcilerRepair', Duration.hours(1)),
      config.reconcilerRepairsAlarm,
      `The reconciler repaired ${config.reconcilerRepairsAlarm} or more records in an hour (crashed commands, hosts that timed out)`,
    );
    const dashboard = new Dashboard(this, 'Dashboard', {
      stage,
      routes: { rest: REST_ROUTES, cc1: CC1_ROUTES },
      functions: functions.map((f) => f.fn),
      streamConsumers: { projector: projector.fn, diskFiles: diskFiles.fn, changeNotifications: changeNotifications.fn },
    });

    // ---- Outputs ----
    new CfnOutput(this, 'ApiUrl', { value: api.apiEndpoint });
    new CfnOutput(this, 'EventBusName', { value: bus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: bus.eventBusArn });
    new CfnOutput(this, 'HostRoleName', { value: hostRole.roleName, description: 'IAM role for hybrid activations (mi- hosts) and the EC2 instance profile' });
    new CfnOutput(this, 'SsmDocumentNames', { value: documents.namesJson(allDocuments) });
    new CfnOutput(this, 'EventsTableName', { value: eventsTable.tableName });
    new CfnOutput(this, 'ControlTableName', { value: controlTable.tableName });
    new CfnOutput(this, 'ImagesTableNames', { value: imagesTables.map((t: dynamodb.Table) => t.tableName).join(',') });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topic.topicArn });
    new CfnOutput(this, 'VmEventsArchiveName', { value: archive.archiveName });
    new CfnOutput(this, 'VmStateChangeRuleName', { value: vmStateChangeRule.ruleName });
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboard.dashboardName });
    new CfnOutput(this, 'DiskFilesDlqUrl', { value: diskFilesDlq.queue.queueUrl, description: 'npm run ops -- repair redrive-disk-files --queue-url <this>' });
  }

  private addRoutes(api: apigwv2.HttpApi, routes: readonly RouteDef[], integration: HttpLambdaIntegration): void {
    for (const r of routes) api.addRoutes({ path: r.path, methods: [apigwv2.HttpMethod[r.method]], integration });
  }

  /**
   * An existing OIDC issuer (context jwtIssuer + jwtAudience), or a Cognito user pool
   * made here with the groups `admin` and `portal`. Either way API Gateway checks a
   * signed JWT; the local HS256 tokens of `npm start` cannot pass it.
   */
  private jwtAuthorizer(config: DeployConfig): apigwv2.IHttpRouteAuthorizer {
    if (config.jwtIssuer) {
      return new HttpJwtAuthorizer('JwtAuthorizer', config.jwtIssuer, { jwtAudience: config.jwtAudience });
    }
    const userPool = new cognito.UserPool(this, 'UserPool', {
      userPoolName: 'cc1-storage-images',
      selfSignUpEnabled: false, // operators create users (and set their CC1 user id)
      signInAliases: { username: true, email: true },
      customAttributes: {
        // The CC1 user id; immutable, so nobody can become another user.
        cc1_user_id: new cognito.NumberAttribute({ min: 1, mutable: false }),
      },
      passwordPolicy: { minLength: 12, requireLowercase: true, requireUppercase: true, requireDigits: true, requireSymbols: true },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    userPool.addGroup('AdminGroup', { groupName: 'admin', description: 'CC1 administrators (admin_cm functions, any image)' });
    userPool.addGroup('PortalGroup', { groupName: 'portal', description: 'Trusted portal services (act for any caller_id)' });
    const client = userPool.addClient('PortalClient', {
      userPoolClientName: 'cc1-portal',
      generateSecret: false,
      authFlows: { userSrp: true, userPassword: true },
      preventUserExistenceErrors: true,
      idTokenValidity: Duration.hours(1),
      accessTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
      readAttributes: new cognito.ClientAttributes().withStandardAttributes({ email: true, emailVerified: true }).withCustomAttributes('cc1_user_id'),
      writeAttributes: new cognito.ClientAttributes().withStandardAttributes({ email: true }),
    });
    Validations.of(userPool).acknowledge(
      {
        id: 'AwsSolutions-COG2',
        reason:
          'MFA is offered (TOTP) but not forced: trusted portal services (group portal) sign in unattended. Deployments that need forced MFA ' +
          'for people use their own IdP through the jwtIssuer/jwtAudience context.',
      },
      {
        id: 'AwsSolutions-COG8',
        reason:
          'The Plus feature plan (threat protection) is a per-user cost the operator chooses; on the Essentials plan sign-up is disabled, ' +
          'users are created by operators only, and passwords follow a 12-character policy.',
      },
    );
    new CfnOutput(this, 'UserPoolId', { value: userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: client.userPoolClientId });
    return new HttpUserPoolAuthorizer('CognitoAuthorizer', userPool, { userPoolClients: [client] });
  }

  /**
   * One role for the CC1 hosts: the SSM agent (hybrid activation for on-premise `mi-`
   * hosts, or an EC2 instance profile) and the event sender (events:PutEvents on our bus).
   */
  private hostRole(bus: events.EventBus): iam.Role {
    const role = new iam.Role(this, 'HostRole', {
      description: 'CC1 hypervisor/storage hosts: SSM agent and VM state event sender',
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:AssumeRole'],
        principals: [new iam.ServicePrincipal('ssm.amazonaws.com')],
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': `arn:${this.partition}:ssm:${this.region}:${this.account}:*` },
        },
      }),
    );
    bus.grantPutEventsTo(role);
    new iam.CfnInstanceProfile(this, 'HostInstanceProfile', { roles: [role.roleName] });
    Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
        reason:
          'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for the SSM agent (registration, Run Command channel); ' +
          'a hand-copied version would drift from what the agent needs.',
    });
    return role;
  }
}
