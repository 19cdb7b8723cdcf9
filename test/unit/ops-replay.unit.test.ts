/**
 * `npm run ops -- replay-vm-events`: StartReplay from the VM events archive, in the
 * asked window, onto the hypervisor bus and to the VM State Change rule only; refused
 * with a clear reason on the local stack and for bad flags. The EventBridge client is mocked.
 */
import { DescribeArchiveCommand, DescribeRuleCommand, EventBridgeClient, StartReplayCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { runCli } from '../../ops/cli';
import { replayVmEventsCommand } from '../../ops/replayVmEvents';

const eventBridge = mockClient(EventBridgeClient);
const BUS_ARN = 'arn:aws:events:eu-west-1:123456789012:event-bus/cc1-hypervisor';
const ARCHIVE_ARN = 'arn:aws:events:eu-west-1:123456789012:archive/cc1-hypervisor-archive';
const RULE_ARN = 'arn:aws:events:eu-west-1:123456789012:rule/cc1-hypervisor/cc1-hypervisor-vm-state-change';

const run = async (args: string[], env: NodeJS.ProcessEnv) => {
  const out: string[] = [];
  const err: string[] = [];
  const command = replayVmEventsCommand({ makeClient: () => new EventBridgeClient({ region: 'eu-west-1' }), env });
  const code = await command.run(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
};

beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(DescribeArchiveCommand).resolves({ ArchiveArn: ARCHIVE_ARN, EventSourceArn: BUS_ARN });
  eventBridge.on(DescribeRuleCommand).resolves({ Arn: RULE_ARN });
  eventBridge.on(StartReplayCommand).resolves({ State: 'STARTING' });
});

test('replays the window from the archive onto the bus, to the VM State Change rule only', async () => {
  const { code, out } = await run(['--since', '2026-11-30T10:00:00Z', '--until', '2026-11-30T12:00:00Z'], { CC1_AWS: '1' });
  expect(code).toBe(0);
  expect(eventBridge.commandCalls(DescribeArchiveCommand)[0]!.args[0].input).toEqual({ ArchiveName: 'cc1-hypervisor-archive' });
  expect(eventBridge.commandCalls(DescribeRuleCommand)[0]!.args[0].input).toEqual({ Name: 'cc1-hypervisor-vm-state-change', EventBusName: 'cc1-hypervisor' });
  const input = eventBridge.commandCalls(StartReplayCommand)[0]!.args[0].input;
  expect(input).toMatchObject({
    EventSourceArn: ARCHIVE_ARN,
    EventStartTime: new Date('2026-11-30T10:00:00Z'),
    EventEndTime: new Date('2026-11-30T12:00:00Z'),
    Destination: { Arn: BUS_ARN, FilterArns: [RULE_ARN] },
  });
  expect(input.ReplayName).toMatch(/^[.\-_A-Za-z0-9]{1,64}$/);
  expect(JSON.parse(out[0]!)).toMatchObject({ replayName: input.ReplayName, state: 'STARTING' });
});

test('the bus comes from --bus, else CC1_EVENT_BUS_NAME', async () => {
  await run(['--since', '2026-11-30T10:00:00Z', '--bus', 'vm-bus'], { CC1_AWS: '1', CC1_EVENT_BUS_NAME: 'other' });
  expect(eventBridge.commandCalls(DescribeArchiveCommand)[0]!.args[0].input).toEqual({ ArchiveName: 'vm-bus-archive' });
  eventBridge.resetHistory();
  await run(['--since', '2026-11-30T10:00:00Z'], { CC1_AWS: '1', CC1_EVENT_BUS_NAME: 'other' });
  expect(eventBridge.commandCalls(DescribeRuleCommand)[0]!.args[0].input).toEqual({ Name: 'other-vm-state-change', EventBusName: 'other' });
});

test('refuses bad flags, and says that replay needs AWS on the local stack', async () => {
  for (const args of [[], ['--since', 'yesterday'], ['--since', '2026-11-30T12:00:00Z', '--until', '2026-11-30T10:00:00Z'], ['--since', '2026-11-30T10:00:00Z', '--bogus']]) {
    const { code, err } = await run(args, { CC1_AWS: '1' });
    expect({ args, code }).toEqual({ args, code: 2 });
    expect(err).toContain('usage:');
  }
  const local = await run(['--since', '2026-11-30T10:00:00Z'], {});
  expect(local.code).toBe(2);
  expect(local.err).toMatch(/needs AWS/);
  expect(eventBridge.calls()).toHaveLength(0);
});

test('the CLI runs it without opening any table', async () => {
  const connect = jest.fn();
  const err: string[] = [];
  const code = await runCli(['replay-vm-events', '--since', 'nope'], { io: { out: () => undefined, err: (l) => err.push(l) }, connect });
  expect(code).toBe(2);
  expect(connect).not.toHaveBeenCalled();
});
