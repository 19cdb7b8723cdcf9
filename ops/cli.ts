/**
 * The operators' CLI: `npm run ops -- <command> [args]`. Works on the local data folder
 * by default, on AWS with `CC1_AWS=1` (see connect.ts). Commands: commands.ts.
 */
import { COMMANDS, type OpsCommand, type OpsIo, type StandaloneCommand } from './commands';
import { connect, type Connection } from './connect';
import { replayVmEventsCommand } from './replayVmEvents';
import { quotaCommand, repairCommand } from './repairCommands';

const help = (commands: Array<OpsCommand | StandaloneCommand>): string =>
  [
    'usage: npm run ops -- <command> [args]',
    '',
    ...commands.map((c) => `  ${c.usage.padEnd(40)} ${c.summary}`),
    '',
    'Where: the local data folder (CC1_DATA_DIR, default .local-data/; through the running `npm start` if any),',
    'DYNAMODB_ENDPOINT=<url>, or AWS with CC1_AWS=1 (TABLE_PREFIX, default cc1; AWS_REGION/AWS_PROFILE as usual).',
    'replay-vm-events works on AWS only (CC1_EVENT_BUS_NAME or --bus, default cc1-hypervisor).',
  ].join('\n');

export const runCli = async (
  argv: string[],
  options: { commands?: Array<OpsCommand | StandaloneCommand>; io?: OpsIo; connect?: () => Promise<Connection> } = {},
): Promise<number> => {
  const commands = options.commands ?? [...COMMANDS, repairCommand, quotaCommand, replayVmEventsCommand()];
  const io = options.io ?? { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };
  const [name, ...args] = argv;
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(help(commands));
    return name === undefined || name === 'help' || name === '--help' ? 0 : 2;
  }
  if (command.standalone) return command.run(args, io);
  const connection = await (options.connect ?? connect)();
  try {
    io.err(`(${connection.where})`);
    return await command.run(args, connection, io);
  } finally {
    await connection.close();
  }
};

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
