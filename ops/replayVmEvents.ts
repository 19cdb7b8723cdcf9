/**
 * `npm run ops -- replay-vm-events --since <ISO time> [--until <ISO time>] [--bus NAME]`:
 * EventBridge replays the VM State Change events archived in that window onto the
 * hypervisor bus, to the VM State Change rule only (vmEvents), e.g. after a bug made
 * vmEvents drop or mishandle some. Safe to run over events already handled: vmEvents
 * compares each event's time with the VM's record, so old news changes nothing (SPEC 4.3).
 * Needs AWS (`CC1_AWS=1`): the archive is an EventBridge feature with no local stand-in.
 */
import { parseArgs } from 'node:util';
import { DescribeArchiveCommand, DescribeRuleCommand, EventBridgeClient, StartReplayCommand } from '@aws-sdk/client-eventbridge';
import { readDeployConfig, vmEventsArchiveName, vmStateChangeRuleName } from '../infra/config';
import type { OpsIo, StandaloneCommand } from './commands';

const USAGE = 'replay-vm-events --since <ISO time> [--until <ISO time>] [--bus NAME]';

const parseTime = (text: string | undefined, what: string): Date => {
  const time = text === undefined ? new Date() : new Date(text);
  if (Number.isNaN(time.getTime())) throw new Error(`${what} is not an ISO time: "${text}"`);
  return time;
};

export const replayVmEventsCommand = ({
  makeClient = () => new EventBridgeClient({}),
  env = process.env,
}: { makeClient?: () => EventBridgeClient; env?: NodeJS.ProcessEnv } = {}): StandaloneCommand => ({
  name: 'replay-vm-events',
  usage: USAGE,
  summary: 'replay the archived VM State Change events of a time window into vmEvents (AWS only: CC1_AWS=1)',
  standalone: true,
  async run(args: string[], io: OpsIo) {
    let since: Date;
    let until: Date;
    let bus: string;
    try {
      const { values } = parseArgs({ args, options: { since: { type: 'string' }, until: { type: 'string' }, bus: { type: 'string' } } });
      if (values.since === undefined) throw new Error('--since is required');
      since = parseTime(values.since, '--since');
      until = parseTime(values.until, '--until');
      if (until <= since) throw new Error('--until must be after --since');
      bus = values.bus ?? env.CC1_EVENT_BUS_NAME ?? readDeployConfig(() => undefined).eventBusName;
    } catch (error) {
      io.err(`${(error as Error).message}\nusage: npm run ops -- ${USAGE}`);
      return 2;
    }
    if (env.CC1_AWS !== '1') {
      io.err(
        'replay-vm-events needs AWS: the VM events archive is an EventBridge feature with no local stand-in. ' +
          'Run it with CC1_AWS=1 (and AWS_REGION / AWS_PROFILE); locally, post the events again to POST /_local/events.',
      );
      return 2;
    }
    const client = makeClient();
    try {
      const archive = await client.send(new DescribeArchiveCommand({ ArchiveName: vmEventsArchiveName(bus) }));
      const rule = await client.send(new DescribeRuleCommand({ Name: vmStateChangeRuleName(bus), EventBusName: bus }));
      const replayName = `vm-events-${since.toISOString().replace(/\D/g, '').slice(0, 14)}-${Date.now()}`;
      const started = await client.send(
        new StartReplayCommand({
          ReplayName: replayName,
          Description: `VM events ${since.toISOString()} .. ${until.toISOString()}, by npm run ops`,
          EventSourceArn: archive.ArchiveArn,
          EventStartTime: since,
          EventEndTime: until,
          // Only to vmEvents' rule: other rules on the bus do not see the events twice.
          Destination: { Arn: archive.EventSourceArn, FilterArns: [rule.Arn!] },
        }),
      );
      io.out(JSON.stringify({ replayName, state: started.State, since: since.toISOString(), until: until.toISOString() }));
      io.err(`follow it with: aws events describe-replay --replay-name ${replayName}`);
      return 0;
    } finally {
      client.destroy();
    }
  },
});
