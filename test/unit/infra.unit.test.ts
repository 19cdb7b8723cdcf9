/**
 * The deployment, proven by synthesis: the CloudFormation template the stack makes,
 * checked with aws-cdk-lib/assertions and cdk-nag. Bundling is skipped here (context
 * `aws:cdk:bundling-stacks: []`); test/int/infra-bundling.int.test.ts bundles for real.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, type TableDef } from '../../adapters/dynamodb/tables';
import { DOCUMENTS } from '../../adapters/ssm/documents';
import { ENV } from '../../functions/shared/config';
import { CC1_ROUTES, REST_ROUTES, routeKeyOf } from '../../functions/shared/routeTable';
import { readDeployConfig, type ContextKey } from '../../infra/config';
import { PROJECT_ROOT } from '../../infra/constructs/cc1Function';
import { StorageImagesStack } from '../../infra/storageImagesStack';

jest.setTimeout(120_000);

const FUNCTIONS = ['restApi', 'cc1Api', 'vmEvents', 'projector', 'diskFiles', 'changeNotifications', 'reconciler'] as const;

/**
 * A throw-away project with one-line handlers: these tests are about the
 * infrastructure, not the handlers (bundling is skipped anyway), so they do not wait
 * for functions/ to be complete. The bundling test uses the real ones.
 */
const stubProject = (() => {
  let dir: string | undefined;
  return () => {
    if (dir) return dir;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc1-infra-'));
    for (const name of FUNCTIONS) {
      fs.mkdirSync(path.join(dir, 'functions', name), { recursive: true });
      fs.writeFileSync(path.join(dir, 'functions', name, 'handler.ts'), 'export const handler = async () => ({});\n');
    }
    fs.copyFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), path.join(dir, 'package-lock.json'));
    fs.copyFileSync(path.join(PROJECT_ROOT, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
    return dir;
  };
})();

/** The feature flags (and settings) of cdk.json, as `cdk synth` applies them. */
const CDK_JSON_CONTEXT = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

const synth = (context: Partial<Record<ContextKey, unknown>> = {}) => {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context } });
  const stack = new StorageImagesStack(app, 'Cc1StorageImages', {
    env: { account: '123456789012', region: 'eu-west-1' },
    projectRoot: stubProject(),
  });
  return { app, stack, template: Template.fromStack(stack) };
};

type Resources = Record<string, { Type: string; Properties?: any; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
const resourcesOf = (t: Template, type: string): Resources => t.findResources(type) as Resources;
const only = <T>(items: Record<string, T>): [string, T] => {
  const entries = Object.entries(items);
  expect(entries).toHaveLength(1);
  return entries[0]!;
};
/** The logical id of the Lambda function of `name` (construct path .../<Name>/Function). */
const functionId = (t: Template, name: string): string => {
  const prefix = name.charAt(0).toUpperCase() + name.slice(1) + 'Function';
  const ids = Object.keys(resourcesOf(t, 'AWS::Lambda::Function')).filter((id) => id.startsWith(prefix) && !id.startsWith(prefix + 'Function'));
  expect(ids).toHaveLength(1);
  return ids[0]!;
};
const roleIdOf = (t: Template, name: string): string => {
  const fn = resourcesOf(t, 'AWS::Lambda::Function')[functionId(t, name)]!;
  return fn.Properties.Role['Fn::GetAtt'][0];
};
/** Every policy statement attached to the role of function `name`. */
const statementsOf = (t: Template, name: string): any[] => {
  const roleId = roleIdOf(t, name);
  return Object.values(resourcesOf(t, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as any[]).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
};
const actionsOf = (s: any): string[] => [s.Action].flat();

/** The route table (functions/shared/routeTable.ts): the one list infra, handlers and docs/openapi.yaml are checked against. */
const EXPECTED_ROUTES = [...REST_ROUTES, ...CC1_ROUTES].map(routeKeyOf);

describe('the stack with its defaults (a Cognito user pool)', () => {
  let t: Template;
  let app: App;
  let stack: StorageImagesStack;
  beforeAll(() => {
    ({ template: t, app, stack } = synth({ storageHostId: 'mi-0123456789abcdef0' }));
  });

  describe('HTTP API', () => {
    it('has exactly the routes of the route table, and no catch-all', () => {
      const keys = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
      expect([...keys].sort()).toEqual([...EXPECTED_ROUTES].sort());
      expect(keys).not.toContain('$default');
    });

    it('puts every route behind the JWT authorizer (no route without it)', () => {
      const [authorizerId, authorizer] = only(resourcesOf(t, 'AWS::ApiGatewayV2::Authorizer'));
      expect(authorizer.Properties).toMatchObject({
        AuthorizerType: 'JWT',
        IdentitySource: ['$request.header.Authorization'],
        JwtConfiguration: { Issuer: expect.anything(), Audience: [expect.anything()] },
      });
      const routes = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Route'));
      expect(routes.length).toBe(EXPECTED_ROUTES.length);
      for (const route of routes) {
        expect(route.Properties.AuthorizationType).toBe('JWT');
        expect(route.Properties.AuthorizerId).toEqual({ Ref: authorizerId });
      }
    });

    it('deploys exactly the routes the handlers serve (functions/restApi ROUTES, cc1Api functions)', () => {
      const { ROUTES } = require('../../functions/restApi/routes') as typeof import('../../functions/restApi/routes');
      const { USER_FUNCTIONS, ADMIN_FUNCTIONS, USER_ACCOUNT_FUNCTIONS } = require('../../functions/cc1Api/cc1Functions') as typeof import('../../functions/cc1Api/cc1Functions');
      const served = [
        ...ROUTES.map((r) => `${r.method} ${r.path}`),
        ...Object.keys(USER_FUNCTIONS).map((fn) => `POST /user/storage_image/${fn}`),
        ...Object.keys(ADMIN_FUNCTIONS).map((fn) => `POST /admin_cm/storage_image/${fn}`),
        ...Object.keys(USER_ACCOUNT_FUNCTIONS).map((fn) => `POST /user/user/${fn}`),
      ];
      const deployed = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
      expect([...deployed].sort()).toEqual([...served].sort());
    });

    it('sends the REST routes to restApi and the CC1 routes to cc1Api', () => {
      const integrations = resourcesOf(t, 'AWS::ApiGatewayV2::Integration');
      const targetOf = (routeKey: string) => {
        const route = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Route')).find((r) => r.Properties.RouteKey === routeKey)!;
        const integrationId = route.Properties.Target['Fn::Join'][1][1].Ref;
        return integrations[integrationId]!.Properties.IntegrationUri['Fn::GetAtt'][0];
      };
      expect(targetOf('POST /storage-images')).toBe(functionId(t, 'restApi'));
      expect(targetOf('GET /vms/{vmId}/disks')).toBe(functionId(t, 'restApi'));
      expect(targetOf('POST /user/storage_image/attach')).toBe(functionId(t, 'cc1Api'));
      expect(targetOf('POST /admin_cm/storage_image/edit')).toBe(functionId(t, 'cc1Api'));
    });

    it('uses a Cognito user pool with the groups admin and portal and an app client', () => {
      const [poolId, pool] = only(resourcesOf(t, 'AWS::Cognito::UserPool'));
      expect(pool.Properties.AdminCreateUserConfig).toEqual({ AllowAdminCreateUserOnly: true });
      expect(pool.DeletionPolicy).toBe('Retain');
      const groups = Object.values(resourcesOf(t, 'AWS::Cognito::UserPoolGroup')).map((g) => g.Properties.GroupName);
      expect(groups.sort()).toEqual(['admin', 'portal']);
      const [clientId] = only(resourcesOf(t, 'AWS::Cognito::UserPoolClient'));
      const [, authorizer] = only(resourcesOf(t, 'AWS::ApiGatewayV2::Authorizer'));
      expect(JSON.stringify(authorizer.Properties.JwtConfiguration.Issuer)).toContain(poolId);
      expect(authorizer.Properties.JwtConfiguration.Audience).toEqual([{ Ref: clientId }]);
      // The CC1 user id is an immutable custom attribute, read from the ID token.
      expect(pool.Properties.Schema).toEqual(
        expect.arrayContaining([expect.objectContaining({ Name: 'cc1_user_id', AttributeDataType: 'Number', Mutable: false })]),
      );
      const [, client] = only(resourcesOf(t, 'AWS::Cognito::UserPoolClient'));
      expect(client.Properties.WriteAttributes).not.toContain('custom:cc1_user_id');
    });

    it('logs access on the stage and throttles by default', () => {
      const [, stage] = only(resourcesOf(t, 'AWS::ApiGatewayV2::Stage'));
      expect(stage.Properties).toMatchObject({
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
        AccessLogSettings: { DestinationArn: expect.anything(), Format: expect.stringMatching('\\$context.requestId') },
      });
    });
  });

  describe('local-only auth cannot be deployed', () => {
    it('has no LOCAL_JWT_SECRET, SSM_ENDPOINT or DYNAMODB_ENDPOINT anywhere in the template', () => {
      const text = JSON.stringify(t.toJSON());
      expect(text).not.toContain('LOCAL_JWT_SECRET');
      expect(text).not.toContain(ENV.ssmEndpoint);
      expect(text).not.toContain(ENV.dynamodbEndpoint);
      for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
        const vars = Object.keys(fn.Properties.Environment?.Variables ?? {});
        expect(vars.filter((v) => /LOCAL|HS256|JWT_SECRET/i.test(v))).toEqual([]);
      }
    });

    it('never imports local/ from infra/ (followed through every relative import)', () => {
      const seen = new Set<string>();
      const visit = (file: string) => {
        if (seen.has(file)) return;
        seen.add(file);
        const source = fs.readFileSync(file, 'utf8');
        for (const m of source.matchAll(/from\s+'(\.[^']+)'|require\('(\.[^']+)'\)/g)) {
          const spec = (m[1] ?? m[2])!;
          const base = path.resolve(path.dirname(file), spec);
          const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
          if (resolved) visit(resolved);
        }
      };
      visit(path.join(PROJECT_ROOT, 'infra', 'app.ts'));
      const local = [...seen].filter((f) => path.relative(PROJECT_ROOT, f).startsWith(`local${path.sep}`));
      expect(local).toEqual([]);
      expect(seen.size).toBeGreaterThan(5);
    });
  });

  describe('functions', () => {
    it('are six Node.js 22 arm64 functions with source maps, Powertools settings and every runtime setting', () => {
      const fns = resourcesOf(t, 'AWS::Lambda::Function');
      expect(Object.keys(fns)).toHaveLength(FUNCTIONS.length);
      const deployed = Object.entries(ENV)
        .filter(([key]) => key !== 'ssmEndpoint' && key !== 'dynamodbEndpoint')
        .map(([, name]) => name);
      for (const fn of Object.values(fns)) {
        expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' });
        const vars = fn.Properties.Environment.Variables;
        expect(vars).toMatchObject({
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'cc1-storage-images',
          POWERTOOLS_METRICS_NAMESPACE: 'Cc1StorageImages',
          TABLE_PREFIX: 'cc1',
          USER_ID_CLAIM: 'custom:cc1_user_id',
          STORAGE_HOST_ID: 'mi-0123456789abcdef0',
          MAX_DISKS_PER_VM: '10',
        });
        for (const name of deployed) expect(vars).toHaveProperty(name);
        expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON', LogGroup: { Ref: expect.anything() } });
      }
      for (const lg of Object.values(resourcesOf(t, 'AWS::Logs::LogGroup'))) expect(lg.Properties.RetentionInDays).toBeGreaterThan(0);
    });

    it('pass the generated SSM document names as SSM_DOCUMENT_NAMES (logical key -> physical name)', () => {
      const docIds = Object.keys(resourcesOf(t, 'AWS::SSM::Document'));
      const fn = resourcesOf(t, 'AWS::Lambda::Function')[functionId(t, 'restApi')]!;
      const value = JSON.stringify(fn.Properties.Environment.Variables.SSM_DOCUMENT_NAMES);
      for (const key of Object.keys(DOCUMENTS)) expect(value).toContain(`\\"${key}\\":\\"`);
      for (const id of docIds) expect(value).toContain(`"Ref":"${id}"`);
    });
  });

  describe('tables', () => {
    const expected: [string, TableDef][] = [
      ['cc1-events', EVENTS_TABLE],
      ['cc1-control', CONTROL_TABLE],
      ['cc1-images-v1', imagesTable(1)],
    ];

    it('are the three tables of adapters/dynamodb/tables.ts, keys and indexes as defined', () => {
      const tables = Object.values(resourcesOf(t, 'AWS::DynamoDB::Table'));
      expect(tables.map((x) => x.Properties.TableName).sort()).toEqual(expected.map(([n]) => n).sort());
      for (const [name, def] of expected) {
        const table = tables.find((x) => x.Properties.TableName === name)!;
        expect(table.Properties.KeySchema).toEqual([
          { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
          ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' }] : []),
        ]);
        expect((table.Properties.GlobalSecondaryIndexes ?? []).map((g: any) => g.IndexName)).toEqual(def.globalSecondaryIndexes.map((g) => g.indexName));
      }
      const events = tables.find((x) => x.Properties.TableName === 'cc1-events')!;
      expect(events.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
      const control = tables.find((x) => x.Properties.TableName === 'cc1-control')!;
      expect(control.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiration', Enabled: true });
    });

    it('keep their data: PITR, deletion protection, retained on delete and replace, on-demand, encrypted', () => {
      for (const table of Object.values(resourcesOf(t, 'AWS::DynamoDB::Table'))) {
        expect(table.DeletionPolicy).toBe('Retain');
        expect(table.UpdateReplacePolicy).toBe('Retain');
        expect(table.Properties).toMatchObject({
          BillingMode: 'PAY_PER_REQUEST',
          DeletionProtectionEnabled: true,
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
        });
      }
    });
  });

  describe('event store stream', () => {
    const mappingOf = (name: string) =>
      Object.values(resourcesOf(t, 'AWS::Lambda::EventSourceMapping')).find((m) => m.Properties.FunctionName.Ref === functionId(t, name))!;

    it('feeds the projector with partial batch responses, bisection, bounded retries and an on-failure queue', () => {
      const m = mappingOf('projector');
      expect(m.Properties).toMatchObject({
        EventSourceArn: { 'Fn::GetAtt': [expect.stringMatching('^EventsTable'), 'StreamArn'] },
        StartingPosition: 'TRIM_HORIZON',
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        MaximumRecordAgeInSeconds: 86_400,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [expect.stringMatching('^ProjectorDlq'), 'Arn'] } } },
      });
    });

    it('feeds diskFiles only StorageImageCreated, StorageImageDiskRetried and StorageImageRevoked, with its own dead-letter queue', () => {
      const m = mappingOf('diskFiles');
      expect(m.Properties).toMatchObject({
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [expect.stringMatching('^DiskFilesDlq'), 'Arn'] } } },
      });
      const [filter] = m.Properties.FilterCriteria.Filters;
      expect(JSON.parse(filter.Pattern)).toEqual({
        eventName: ['INSERT'],
        dynamodb: { NewImage: { type: { S: ['StorageImageCreated', 'StorageImageDiskRetried', 'StorageImageRevoked'] } } },
      });
    });

    it('feeds changeNotifications only the event types that change state or attachment, with its own dead-letter queue', () => {
      const m = mappingOf('changeNotifications');
      expect(m.Properties).toMatchObject({
        EventSourceArn: { 'Fn::GetAtt': [expect.stringMatching('^EventsTable'), 'StreamArn'] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [expect.stringMatching('^ChangeNotificationsDlq'), 'Arn'] } } },
      });
      const [filter] = m.Properties.FilterCriteria.Filters;
      expect(JSON.parse(filter.Pattern)).toEqual({
        eventName: ['INSERT'],
        dynamodb: {
          NewImage: {
            type: { S: ['StorageImageCreated', 'StorageImageDiskReady', 'StorageImageDiskFailed', 'StorageImageDiskRetried', 'StorageImageAttached', 'StorageImageDetached', 'StorageImageRevoked'] },
          },
        },
      });
    });

    it('dead-letter queues are encrypted and refuse plain HTTP', () => {
      const queues = resourcesOf(t, 'AWS::SQS::Queue');
      expect(Object.keys(queues)).toHaveLength(4);
      for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
      const policies = Object.values(resourcesOf(t, 'AWS::SQS::QueuePolicy'));
      for (const id of Object.keys(queues)) {
        const policy = policies.find((p) => p.Properties.Queues.some((q: any) => q.Ref === id))!;
        expect(policy.Properties.PolicyDocument.Statement).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        );
      }
    });
  });

  describe('EventBridge', () => {
    it('has the custom bus and a rule for VM State Change from cc1.hypervisor into vmEvents, with retries and a DLQ', () => {
      const [busId, bus] = only(resourcesOf(t, 'AWS::Events::EventBus'));
      expect(bus.Properties.Name).toBe('cc1-hypervisor');
      const rules = Object.values(resourcesOf(t, 'AWS::Events::Rule'));
      const rule = rules.find((r) => r.Properties.EventPattern)!;
      expect(rule.Properties.EventBusName).toEqual({ Ref: busId });
      expect(rule.Properties.EventPattern).toEqual({ source: ['cc1.hypervisor'], 'detail-type': ['VM State Change'] });
      const [target] = rule.Properties.Targets;
      expect(target).toMatchObject({
        Arn: { 'Fn::GetAtt': [functionId(t, 'vmEvents'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 86_400 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching('^VmEventsDlq'), 'Arn'] } },
      });
      // A handler error (after Lambda's own retries) is dead-lettered too.
      const invokeConfig = Object.values(resourcesOf(t, 'AWS::Lambda::EventInvokeConfig')).find(
        (c) => c.Properties.FunctionName.Ref === functionId(t, 'vmEvents'),
      )!;
      expect(invokeConfig.Properties.DestinationConfig.OnFailure.Destination).toEqual({
        'Fn::GetAtt': [expect.stringMatching('^VmEventsDlq'), 'Arn'],
      });
    });

    it('runs the reconciler every five minutes, and nothing resets the quota ledgers', () => {
      const schedules = Object.values(resourcesOf(t, 'AWS::Events::Rule')).filter((r) => r.Properties.ScheduleExpression);
      const reconciler = { 'Fn::GetAtt': [functionId(t, 'reconciler'), 'Arn'] };
      expect(
        schedules.map((r) => ({ every: r.Properties.ScheduleExpression, arn: r.Properties.Targets[0].Arn, input: r.Properties.Targets[0].Input })),
      ).toEqual(
        expect.arrayContaining([
          { every: 'rate(5 minutes)', arn: reconciler, input: undefined },
        ]),
      );
      expect(schedules).toHaveLength(1);
    });

    it('lets changeNotifications put events on the bus and nowhere else (least privilege), naming the bus in its environment', () => {
      const [busId] = only(resourcesOf(t, 'AWS::Events::EventBus'));
      const puts = statementsOf(t, 'changeNotifications').filter((s) => actionsOf(s).some((a: string) => a.startsWith('events:')));
      expect(puts).toEqual([expect.objectContaining({ Effect: 'Allow', Action: 'events:PutEvents', Resource: { 'Fn::GetAtt': [busId, 'Arn'] } })]);
      // No table access: it reads the stream only (the event source mapping's actions).
      const dynamo = statementsOf(t, 'changeNotifications').flatMap(actionsOf).filter((a: string) => a.startsWith('dynamodb:'));
      expect(dynamo.sort()).toEqual(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams']);
      const fn = resourcesOf(t, 'AWS::Lambda::Function')[functionId(t, 'changeNotifications')]!;
      expect(fn.Properties.Environment.Variables.CHANGE_EVENT_BUS_NAME).toEqual({ Ref: busId });
      // No other function may put events.
      for (const name of FUNCTIONS.filter((n) => n !== 'changeNotifications')) {
        expect({ name, puts: statementsOf(t, name).flatMap(actionsOf).filter((a: string) => a.startsWith('events:')) }).toEqual({ name, puts: [] });
      }
    });

    it('lets the hosts put events on the bus (host role) and be managed by SSM', () => {
      const [, role] = Object.entries(resourcesOf(t, 'AWS::IAM::Role')).find(([id]) => id.startsWith('HostRole'))!;
      const principals = role.Properties.AssumeRolePolicyDocument.Statement.map((s: any) => s.Principal.Service);
      expect(principals.sort()).toEqual(['ec2.amazonaws.com', 'ssm.amazonaws.com']);
      const statements = Object.values(resourcesOf(t, 'AWS::IAM::Policy'))
        .filter((p) => p.Properties.Roles.some((r: any) => r.Ref?.startsWith('HostRole')))
        .flatMap((p) => p.Properties.PolicyDocument.Statement);
      expect(statements).toEqual([expect.objectContaining({ Action: 'events:PutEvents', Resource: { 'Fn::GetAtt': [expect.anything(), 'Arn'] } })]);
    });
  });

  describe('SSM documents', () => {
    it('are created from adapters/ssm/documents, as Command documents in JSON', () => {
      const docs = Object.values(resourcesOf(t, 'AWS::SSM::Document'));
      expect(docs).toHaveLength(Object.keys(DOCUMENTS).length);
      for (const { content } of Object.values(DOCUMENTS)) {
        const doc = docs.find((d) => d.Properties.Content.description === content.description)!;
        expect(doc.Properties).toMatchObject({ DocumentType: 'Command', DocumentFormat: 'JSON', Content: JSON.parse(JSON.stringify(content)) });
      }
    });

    it('give every parameter an allowedPattern and pass values only as environment variables', () => {
      for (const doc of Object.values(resourcesOf(t, 'AWS::SSM::Document'))) {
        const content = doc.Properties.Content;
        expect(content.schemaVersion).toBe('2.2');
        for (const [name, p] of Object.entries<any>(content.parameters)) {
          expect([name, typeof p.allowedPattern]).toEqual([name, 'string']);
          expect(p.allowedPattern).toMatch(/^\^.*\$$/);
        }
        for (const step of content.mainSteps) {
          expect(step.inputs.interpolationType).toBe('ENV_VAR');
          expect(step.inputs.runCommand.join('\n')).not.toMatch(/\{\{/);
        }
      }
    });
  });

  describe('IAM', () => {
    const documentArn = (id: string) => ({
      'Fn::Join': ['', ['arn:aws:ssm:eu-west-1:123456789012:document/', { Ref: id }]],
    });
    const docId = (key: string) =>
      Object.entries(resourcesOf(t, 'AWS::SSM::Document')).find(([, d]) => d.Properties.Content.description === (DOCUMENTS as any)[key].content.description)![0];

    it('allows ssm:SendCommand only with our documents, and only on instances tagged as CC1 hosts', () => {
      const allSend = Object.values(resourcesOf(t, 'AWS::IAM::Policy'))
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .filter((s: any) => actionsOf(s).some((a) => a === 'ssm:SendCommand' || a === 'ssm:*' || a === '*'));
      expect(allSend.length).toBeGreaterThan(0);
      for (const s of allSend) {
        expect(actionsOf(s)).toEqual(['ssm:SendCommand']);
        const resources = [s.Resource].flat();
        expect(resources).not.toContain('*');
        const isDocuments = resources.every((r: any) => JSON.stringify(r).includes(':document/'));
        if (isDocuments) {
          expect(s.Condition).toBeUndefined();
        } else {
          expect(resources).toEqual([
            'arn:aws:ec2:*:123456789012:instance/*',
            'arn:aws:ssm:*:123456789012:managed-instance/*',
          ]);
          expect(s.Condition).toEqual({ StringEquals: { 'ssm:resourceTag/cc1-role': ['hypervisor', 'storage'] } });
        }
      }
    });

    it('gives each SSM caller exactly its documents; vmEvents and the projector none', () => {
      const docsOf = (name: string) =>
        statementsOf(t, name)
          .filter((s) => actionsOf(s).includes('ssm:SendCommand') && !s.Condition)
          .flatMap((s) => [s.Resource].flat())
          .sort(byJson);
      const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
      const hypervisor = ['attachDisk', 'detachDisk', 'listDisks', 'storageTools'].map((k) => documentArn(docId(k))).sort(byJson);
      expect(docsOf('restApi')).toEqual([...hypervisor, ...['blockResize', 'resizeDiskFile'].map((k) => documentArn(docId(k)))].sort(byJson));
      expect(docsOf('cc1Api')).toEqual(hypervisor);
      expect(docsOf('diskFiles')).toEqual(['storageFreeSpace', 'createDiskFile', 'deleteDiskFile'].map((k) => documentArn(docId(k))).sort(byJson));
      expect(docsOf('reconciler')).toHaveLength(Object.keys(DOCUMENTS).length);
      for (const name of ['vmEvents', 'projector']) {
        expect(statementsOf(t, name).flatMap(actionsOf).filter((a) => a.startsWith('ssm:'))).toEqual([]);
      }
    });

    it('allows the command follow-up calls and X-Ray (no resource-level permissions) and nothing more on "*"', () => {
      const xray = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
      for (const name of FUNCTIONS) {
        const star = statementsOf(t, name).filter((s) => [s.Resource].flat().includes('*'));
        const ssm = ['ssm:CancelCommand', 'ssm:GetCommandInvocation', 'ssm:ListCommandInvocations'];
        expect(star.flatMap(actionsOf).sort()).toEqual(
          [
            ...xray,
            ...(['restApi', 'cc1Api', 'diskFiles', 'reconciler'].includes(name) ? ssm : []),
            ...(name === 'diskFiles' || name === 'projector' || name === 'changeNotifications' ? ['dynamodb:ListStreams'] : []),
          ].sort(),
        );
      }
    });

    describe('the event log is append-only by IAM', () => {
      const FORBIDDEN = ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
      /** Does an action pattern (`dynamodb:*`, `dynamodb:Update*`, `*`) allow one of the forbidden actions? */
      const allowsForbidden = (pattern: string) =>
        FORBIDDEN.some((action) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(action));
      const eventsTableId = () => Object.entries(resourcesOf(t, 'AWS::DynamoDB::Table')).find(([, x]) => x.Properties.TableName === 'cc1-events')![0];
      /** Does a statement's Resource reach the events table (its ARN, or a wildcard that matches it)? */
      const reachesEvents = (resource: unknown) => {
        const text = JSON.stringify(resource);
        return text.includes(`"${eventsTableId()}"`) || resource === '*' || /table\/(\*|cc1-\*|cc1-e\*|cc1-events)/.test(text);
      };

      it('no IAM policy anywhere allows UpdateItem, DeleteItem or BatchWriteItem on the events table', () => {
        const policies = [
          ...Object.values(resourcesOf(t, 'AWS::IAM::Policy')).map((p) => p.Properties.PolicyDocument),
          ...Object.values(resourcesOf(t, 'AWS::IAM::ManagedPolicy')).map((p) => p.Properties.PolicyDocument),
          ...Object.values(resourcesOf(t, 'AWS::IAM::Role')).flatMap((r) => (r.Properties.Policies ?? []).map((p: any) => p.PolicyDocument)),
        ];
        const statements = policies.flatMap((d) => d.Statement);
        expect(statements.length).toBeGreaterThan(20);
        const offending = statements.filter(
          (st: any) => st.Effect === 'Allow' && actionsOf(st).some(allowsForbidden) && [st.Resource].flat().some(reachesEvents),
        );
        expect(offending).toEqual([]);
        // The check does find such a statement: the old grantReadWriteData.
        expect(allowsForbidden('dynamodb:*') && allowsForbidden('dynamodb:UpdateItem') && !allowsForbidden('dynamodb:PutItem')).toBe(true);
      });

      it('writers may append (PutItem, ConditionCheckItem) and read; only the reconciler scans; the projector only reads', () => {
        const onEvents = (name: string) =>
          statementsOf(t, name)
            .filter((st) => [st.Resource].flat().some((r: unknown) => JSON.stringify(r).includes(`"${eventsTableId()}"`)) && !st.Action.toString().includes('Stream'))
            .flatMap(actionsOf)
            .sort();
        const command = ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'];
        for (const name of ['restApi', 'cc1Api', 'vmEvents', 'diskFiles']) expect({ name, actions: onEvents(name) }).toEqual({ name, actions: command });
        expect(onEvents('reconciler')).toEqual([...command, 'dynamodb:Scan'].sort());
        expect(onEvents('projector')).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
      });

      it('control records: only the API functions may delete (idempotency records); images rows are only ever Put', () => {
        const actionsOn = (name: string, sid: string) => statementsOf(t, name).filter((st) => st.Sid === sid).flatMap(actionsOf);
        for (const name of FUNCTIONS) {
          expect({ name, deletes: actionsOn(name, 'ControlRecords').includes('dynamodb:DeleteItem') }).toEqual({ name, deletes: name === 'restApi' || name === 'cc1Api' });
          expect(actionsOn(name, 'ImagesReadModels').filter((a) => FORBIDDEN.includes(a))).toEqual([]);
        }
      });
    });

    it('gives the projector read-only access to the event log and the control table', () => {
      const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
      const onTable = (prefix: string) =>
        statementsOf(t, 'projector').filter((s) =>
          [s.Resource].flat().some((r: any) => JSON.stringify(r).includes(`"${prefix}`)),
        );
      expect(onTable('EventsTable').flatMap(actionsOf).filter((a) => writes.includes(a))).toEqual([]);
      expect(onTable('ControlTable').flatMap(actionsOf).filter((a) => writes.includes(a))).toEqual([]);
    });

    it('reaches the images read models through the versioned name pattern only', () => {
      const images = statementsOf(t, 'projector').find((s) => s.Sid === 'ImagesReadModels')!;
      const rendered = JSON.stringify(images.Resource);
      expect(rendered).toContain(':table/cc1-images-v*');
      expect(rendered).toContain(':table/cc1-images-v*/index/*');
    });

    it('gives functions no AWS managed policies (each role writes only to its own log group)', () => {
      for (const name of FUNCTIONS) {
        const role = resourcesOf(t, 'AWS::IAM::Role')[roleIdOf(t, name)]!;
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
    });
  });

  describe('alarms', () => {
    const alarms = () => Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm'));
    const byMetric = (metric: string) => alarms().filter((a) => a.Properties.MetricName === metric);
    const dimensionOf = (a: any) => a.Properties.Dimensions?.[0]?.Value?.Ref;

    it('watch function errors, every DLQ, projection lag and API 5xx, into an encrypted SNS topic', () => {
      const [topicId, topic] = only(resourcesOf(t, 'AWS::SNS::Topic'));
      expect(topic.Properties.KmsMasterKeyId).toBeDefined();
      for (const a of alarms()) expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(byMetric('Errors')).toHaveLength(FUNCTIONS.length);
      expect(byMetric('ApproximateNumberOfMessagesVisible')).toHaveLength(4);
      for (const a of byMetric('ApproximateNumberOfMessagesVisible')) {
        expect(a.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      }
      const lag = byMetric('IteratorAge').find((a) => dimensionOf(a) === functionId(t, 'projector'))!;
      expect(lag.Properties).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 60_000 });
      expect(byMetric('5xx')).toHaveLength(1);
    });

    it('watch throttles and a duration above 80% of the timeout, per function', () => {
      const timeouts = Object.fromEntries(FUNCTIONS.map((name) => [functionId(t, name), resourcesOf(t, 'AWS::Lambda::Function')[functionId(t, name)]!.Properties.Timeout]));
      expect(byMetric('Throttles').map(dimensionOf).sort()).toEqual(Object.keys(timeouts).sort());
      const durations = byMetric('Duration');
      expect(durations.map(dimensionOf).sort()).toEqual(Object.keys(timeouts).sort());
      for (const a of durations) {
        expect(a.Properties).toMatchObject({ Statistic: 'Maximum', ComparisonOperator: 'GreaterThanThreshold' });
        expect(a.Properties.Threshold).toBe(timeouts[dimensionOf(a)] * 1000 * 0.8);
      }
      expect(timeouts[functionId(t, 'restApi')]).toBe(29); // 80%: 23.2 s
    });

    it("watch diskFiles' stream lag too", () => {
      const lag = byMetric('IteratorAge').find((a) => dimensionOf(a) === functionId(t, 'diskFiles'))!;
      expect(lag.Properties).toMatchObject({ Statistic: 'Maximum', Threshold: 1_800_000 });
    });

    it("watch changeNotifications' stream lag, as diskFiles', its threshold from context", () => {
      const lagOf = (template: Template) =>
        Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).find(
          (a) => a.Properties.MetricName === 'IteratorAge' && a.Properties.Dimensions?.[0]?.Value?.Ref === functionId(template, 'changeNotifications'),
        )!;
      const diskFilesLag = byMetric('IteratorAge').find((a) => dimensionOf(a) === functionId(t, 'diskFiles'))!;
      // The same alarm shape as diskFiles' (statistic, periods, comparison, missing data), its own threshold.
      const shape = ({ Threshold: _threshold, Dimensions: _dimensions, AlarmDescription: _description, ...rest }: Record<string, unknown>) => rest;
      expect(shape(lagOf(t).Properties)).toEqual(shape(diskFilesLag.Properties));
      expect(lagOf(t).Properties).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 300_000, EvaluationPeriods: 3 });
      expect(lagOf(t).Properties.AlarmDescription).toContain('Change notifications');
      expect(byMetric('IteratorAge').map(dimensionOf).sort()).toEqual(['projector', 'diskFiles', 'changeNotifications'].map((n) => functionId(t, n)).sort());
      expect(lagOf(synth({ changeNotificationsLagAlarmSeconds: '45' }).template).Properties.Threshold).toBe(45_000);
    });

    /** The metrics of a metric-math alarm, by id. */
    const mathAlarm = (template: Template, metric: string) =>
      Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).find((a) =>
        (a.Properties.Metrics ?? []).some((m: any) => m.MetricStat?.Metric?.MetricName === metric),
      )!;

    it('watch the attach and detach failure rates and the reconciler repairs, thresholds from context', () => {
      const check = (template: Template, attach: number, detach: number, repairs: number) => {
        for (const [failed, succeeded, percent] of [['AttachFailed', 'AttachSucceeded', attach], ['DetachFailed', 'DetachSucceeded', detach]] as const) {
          const alarm = mathAlarm(template, failed);
          expect(alarm.Properties.Threshold).toBe(percent);
          const stats = alarm.Properties.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat);
          expect(stats.map((m: any) => m.Metric.MetricName).sort()).toEqual([failed, succeeded].sort());
          for (const m of stats) {
            // The totals, but for successful attaches: the hot ones only (boot-time attaches never fail).
            const dimensions = [...(m.Metric.MetricName === 'AttachSucceeded' ? [{ Name: 'mode', Value: 'hot' }] : []), { Name: 'service', Value: 'cc1-storage-images' }];
            expect(m.Metric).toMatchObject({ Namespace: 'Cc1StorageImages', Dimensions: dimensions });
            expect(m).toMatchObject({ Stat: 'Sum', Period: 900 });
          }
          expect(alarm.Properties.Metrics.find((m: any) => m.Expression).Expression).toMatch(/100 \* FILL\(failed, 0\) \/ \(FILL\(failed, 0\) \+ FILL\(succeeded, 0\)\)/);
        }
        const repair = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).find((a) => a.Properties.MetricName === 'ReconcilerRepair')!;
        expect(repair.Properties).toMatchObject({ Namespace: 'Cc1StorageImages', Statistic: 'Sum', Period: 3600, Threshold: repairs, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
      };
      check(t, 20, 20, 5);
      check(synth({ attachFailurePercentAlarm: '5', detachFailurePercentAlarm: 50, reconcilerRepairsAlarm: '12' }).template, 5, 50, 12);
    });
  });

  describe('dashboard', () => {
    it('shows the golden signals: requests, errors, p99 per route, attach outcomes, stream lag, reconciler repairs', () => {
      const [, dashboard] = only(resourcesOf(t, 'AWS::CloudWatch::Dashboard'));
      const body = JSON.stringify(dashboard.Properties.DashboardBody);
      for (const title of ['Requests', 'API errors', 'p99 latency per route', 'Attach outcomes', 'Stream lag', 'Reconciler repairs']) expect(body).toContain(title);
      for (const metric of ['AttachSucceeded', 'AttachFailed', 'DetachFailed', 'ReconcilerRepair', 'IteratorAge', '5xx', '4xx', 'Count']) expect(body).toContain(`\\"${metric}\\"`);
      // One p99 line per route of the table (the stage publishes per-route metrics).
      for (const key of EXPECTED_ROUTES) {
        const [method, path] = key.split(' ');
        expect(body).toContain(`\\"Method\\",\\"${method}\\",\\"Resource\\",\\"${path}\\"`);
      }
      expect(body.match(/p99/g)!.length).toBeGreaterThanOrEqual(EXPECTED_ROUTES.length);
      // Stream lag: one line per stream consumer, changeNotifications included.
      const widgets = JSON.parse(Array.isArray(dashboard.Properties.DashboardBody['Fn::Join']) ? dashboard.Properties.DashboardBody['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : 'x')).join('') : dashboard.Properties.DashboardBody).widgets;
      const lag = widgets.find((w: any) => w.properties?.title?.startsWith('Stream lag'));
      expect(lag.properties.metrics.map((m: unknown[]) => (m.at(-1) as { label: string }).label).sort()).toEqual(['changeNotifications', 'diskFiles', 'projector']);
      const [, stage] = only(resourcesOf(t, 'AWS::ApiGatewayV2::Stage'));
      expect(stage.Properties.DefaultRouteSettings.DetailedMetricsEnabled).toBe(true);
    });
  });

  describe('operations', () => {
    it('traces every function with X-Ray and the Powertools Tracer by default', () => {
      for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
        expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
        expect(fn.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED).toBe('true');
      }
    });

    it('runs one reconciler at a time (reserved concurrency 1); the other functions share the pool', () => {
      const fns = resourcesOf(t, 'AWS::Lambda::Function');
      expect(fns[functionId(t, 'reconciler')]!.Properties.ReservedConcurrentExecutions).toBe(1);
      for (const name of FUNCTIONS.filter((n) => n !== 'reconciler')) expect(fns[functionId(t, name)]!.Properties.ReservedConcurrentExecutions).toBeUndefined();
    });

    it('archives the VM events of the hypervisor bus, retention from context, under the name the ops CLI replays from', () => {
      const [busId] = only(resourcesOf(t, 'AWS::Events::EventBus'));
      const [, archive] = only(resourcesOf(t, 'AWS::Events::Archive'));
      expect(archive.Properties).toMatchObject({
        ArchiveName: 'cc1-hypervisor-archive',
        SourceArn: { 'Fn::GetAtt': [busId, 'Arn'] },
        EventPattern: { source: ['cc1.hypervisor'] },
        RetentionDays: 30,
      });
      const rule = Object.values(resourcesOf(t, 'AWS::Events::Rule')).find((r) => r.Properties.EventPattern)!;
      expect(rule.Properties.Name).toBe('cc1-hypervisor-vm-state-change');
      const [, kept] = only(resourcesOf(synth({ vmEventsArchiveDays: '365' }).template, 'AWS::Events::Archive'));
      expect(kept.Properties.RetentionDays).toBe(365);
    });
  });

  describe('cdk-nag (AWS Solutions)', () => {
    it('has no unacknowledged errors or warnings', () => {
      const report = new AwsSolutionsChecks(app).validateScope(app);
      const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
      expect(findings).toEqual([]);
    });

    it('gives every acknowledgment a written reason', () => {
      const acks: { path: string; id: string; reason: string }[] = [];
      const walk = (c: IConstruct) => {
        for (const entry of c.node.metadata) {
          if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
          for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) acks.push({ path: c.node.path, id, reason });
        }
        c.node.children.forEach(walk);
      };
      walk(stack);
      expect(acks.length).toBeGreaterThan(0);
      for (const a of acks) {
        expect(a.id).toMatch(/AwsSolutions-[A-Z]+\d+/);
        expect(a.reason.length).toBeGreaterThan(60);
      }
    });
  });
});

describe('context', () => {
  it('answers browser preflights only for the configured origins (no CORS by default)', () => {
    const [, plain] = only(resourcesOf(synth().template, 'AWS::ApiGatewayV2::Api'));
    expect(plain.Properties.CorsConfiguration).toBeUndefined();
    const { template } = synth({ corsAllowOrigins: 'https://portal.example.org' });
    const [, api] = only(resourcesOf(template, 'AWS::ApiGatewayV2::Api'));
    expect(api.Properties.CorsConfiguration).toMatchObject({
      AllowOrigins: ['https://portal.example.org'],
      AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
    });
    expect(() => synth({ corsAllowOrigins: 'http://insecure.example.org' })).toThrow(/corsAllowOrigins/);
  });

  it('uses an existing issuer and audience instead of creating a user pool', () => {
    const { template } = synth({ jwtIssuer: 'https://login.example.org/realms/cc1', jwtAudience: 'cc1-portal,cc1-admin' });
    expect(Object.keys(template.findResources('AWS::Cognito::UserPool'))).toEqual([]);
    const [, authorizer] = only(resourcesOf(template, 'AWS::ApiGatewayV2::Authorizer'));
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://login.example.org/realms/cc1', Audience: ['cc1-portal', 'cc1-admin'] },
    });
    for (const route of Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'))) expect(route.Properties.AuthorizationType).toBe('JWT');
    const fn = Object.values(resourcesOf(template, 'AWS::Lambda::Function'))[0]!;
    expect(fn.Properties.Environment.Variables.USER_ID_CLAIM).toBe('sub');
  });

  it('adds the next images generation for a rebuild, and the settings reach the functions and the IAM condition', () => {
    const { template } = synth({
      imagesTableVersions: '1,2',
      tablePrefix: 'cloud7',
      storagePath: '/srv/cc1',
      defaultQuotaMb: '5000',
      maxDisksPerVm: 12,
      hostCommandTimeoutMs: '15000',
      hostCommandPollMs: 250,
      userIdClaim: 'cc1_uid',
      hostTagKey: 'Cc1Host',
      hostTagValues: ['kvm'],
      eventBusName: 'cc1-vm-events',
    });
    const names = Object.values(resourcesOf(template, 'AWS::DynamoDB::Table')).map((x) => x.Properties.TableName);
    expect(names.sort()).toEqual(['cloud7-control', 'cloud7-events', 'cloud7-images-v1', 'cloud7-images-v2']);
    const vars = Object.values(resourcesOf(template, 'AWS::Lambda::Function'))[0]!.Properties.Environment.Variables;
    expect(vars).toMatchObject({
      TABLE_PREFIX: 'cloud7',
      STORAGE_PATH: '/srv/cc1',
      DEFAULT_QUOTA_MB: '5000',
      MAX_DISKS_PER_VM: '12',
      HOST_COMMAND_TIMEOUT_MS: '15000',
      HOST_COMMAND_POLL_MS: '250',
      USER_ID_CLAIM: 'cc1_uid',
    });
    expect(JSON.stringify(template.toJSON())).toContain('"ssm:resourceTag/Cc1Host":["kvm"]');
    expect(only(resourcesOf(template, 'AWS::Events::EventBus'))[1].Properties.Name).toBe('cc1-vm-events');
  });

  it('deploys several storages as STORAGES (unset: empty, the single storage of storagePath)', () => {
    const storages = [
      { id: 'a', path: '/srv/a', hostId: 'mi-0123456789abcdef0' },
      { id: 'b', path: '/srv/b', hostId: 'i-0123456789abcdef1' },
    ];
    const { template } = synth({ storages: JSON.stringify(storages) });
    const vars = Object.values(resourcesOf(template, 'AWS::Lambda::Function'))[0]!.Properties.Environment.Variables;
    expect(JSON.parse(vars.STORAGES)).toEqual(storages);
    expect(readDeployConfig(() => undefined).storages).toEqual([]);
  });

  it('turns tracing off (X-Ray and the Tracer) with xrayTracing=false, and keeps cdk-nag clean', () => {
    const { app, template } = synth({ xrayTracing: 'false', alarmEmail: 'ops@example.org' });
    for (const fn of Object.values(resourcesOf(template, 'AWS::Lambda::Function'))) {
      expect(fn.Properties.TracingConfig).toBeUndefined();
      expect(fn.Properties.Environment.Variables.POWERTOOLS_TRACE_ENABLED).toBe('false');
    }
    expect(JSON.stringify(template.toJSON())).not.toContain('xray:PutTraceSegments');
    expect(new AwsSolutionsChecks(app).validateScope(app).violations).toEqual([]);
  });

  it('refuses bad values before building anything', () => {
    const get = (ctx: Record<string, unknown>) => () => readDeployConfig((k) => ctx[k]);
    expect(get({ storageHostId: 'i-1; rm -rf /' })).toThrow(/storageHostId/);
    expect(get({ storagePath: '/srv/../etc' })).toThrow(/storagePath/);
    expect(get({ jwtIssuer: 'https://issuer.example.org' })).toThrow(/jwtAudience/);
    expect(get({ jwtIssuer: 'http://insecure.example.org', jwtAudience: 'x' })).toThrow(/jwtIssuer/);
    expect(get({ imagesTableVersions: '1,2,3' })).toThrow(/imagesTableVersions/);
    expect(get({ hostCommandTimeoutMs: '60000' })).toThrow(/hostCommandTimeoutMs/);
    expect(get({ xrayTracing: 'yes' })).toThrow(/xrayTracing/);
    expect(get({ attachFailurePercentAlarm: '0' })).toThrow(/attachFailurePercentAlarm/);
    expect(get({ vmEventsArchiveDays: '-1' })).toThrow(/vmEventsArchiveDays/);
    expect(get({ storages: '[{"id":"a","path":"/srv/a","hostId":"i-1; rm -rf /"}]' })).toThrow(/storages/);
    expect(get({ storages: [{ id: 'a', path: '/srv/../etc', hostId: 'mi-0123456789abcdef0' }] })).toThrow(/storages/);
    expect(readDeployConfig(() => undefined)).toMatchObject({ tablePrefix: 'cc1', imagesTableVersions: [1], hostTagValues: ['hypervisor', 'storage'] });
  });
});
