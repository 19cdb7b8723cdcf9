/**
 * The SSM documents' scripts are real shell files (adapters/ssm/scripts), checked as
 * shell: `sh -n` (dash, the sh the SSM agent runs on Debian) and `bash -n` on every file,
 * shellcheck on every file and on each document's rendered script (what a host runs).
 * The loader that pastes lib/ fragments into a document is tested here too; the scripts'
 * behaviour is tested against real libvirt and files (hypervisor.*.int, ssm-injection.int).
 *
 * shellcheck is a Debian package: CI installs it, and there a missing shellcheck fails.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkExitCodes,
  DEFINITIONS,
  type DocumentKey,
  DOCUMENTS,
  inlineFragments,
  renderScript,
  SCRIPTS_DIR,
  scriptFiles,
} from '../../adapters/ssm/documents';

const KEYS = Object.keys(DEFINITIONS) as DocumentKey[];

const shellcheckAvailable = spawnSync('shellcheck', ['--version']).status === 0;
if (!shellcheckAvailable && !process.env.CI) {
  console.warn('\n*** shellcheck is NOT installed: SKIPPING the shellcheck tests of the SSM scripts (apt-get install shellcheck). In CI this is a failure.\n');
}

/** Runs `command args` with `input` on stdin; the output when it fails, else ''. */
function problems(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { input, encoding: 'utf8', cwd: SCRIPTS_DIR });
  return result.status === 0 ? '' : `${result.stdout}${result.stderr}`.trim() || `exit ${result.status}`;
}

describe('the SSM scripts as files', () => {
  it('are one file per document, plus the lib/ fragments', () => {
    const files = scriptFiles();
    expect(files.filter((f) => !f.startsWith('lib/')).sort()).toEqual(KEYS.map((k) => `${k}.sh`).sort());
    expect(files).toEqual(expect.arrayContaining(['lib/common.sh', 'lib/virsh.sh']));
  });

  it.each(scriptFiles())('%s parses as POSIX sh (dash) and bash', (file) => {
    const path = join(SCRIPTS_DIR, file);
    expect(problems('sh', ['-n', path])).toBe('');
    expect(problems('bash', ['-n', path])).toBe('');
  });

  (shellcheckAvailable || process.env.CI ? it : it.skip)('pass shellcheck, following the lib/ fragments they source', () => {
    expect(shellcheckAvailable).toBe(true);
    expect(problems('shellcheck', ['-x', '-s', 'sh', ...scriptFiles()])).toBe('');
  });
});

describe('a document built from the files', () => {
  it.each(KEYS)('%s: its script is self-contained (fragments pasted in), parses as sh, and passes shellcheck', (key) => {
    const script = DOCUMENTS[key].content.mainSteps[0]!.inputs.runCommand.join('\n');
    expect(script).toBe(renderScript(key));
    // On a host only the document's text arrives: nothing may be read from beside $0.
    expect(script).not.toContain('$(dirname "$0")');
    expect(script).not.toMatch(/@[A-Z_]+@/);
    expect(problems('sh', ['-n'], script)).toBe('');
    if (shellcheckAvailable || process.env.CI) expect(problems('shellcheck', ['-s', 'sh', '-'], script)).toBe('');
  });

  it('pastes each fragment once, though several scripts source it', () => {
    // attachDisk.sh sources lib/virsh.sh, which sources lib/common.sh.
    const script = renderScript('attachDisk');
    expect(script.match(/^EXIT_FAILED=/gm)).toHaveLength(1);
    expect(script.match(/^virsh_failed\(\)/gm)).toHaveLength(1);
  });

  it('has the catalogue mkfs tools filled in, as words', () => {
    expect(renderScript('storageTools')).toMatch(/mkfs\.ext4/);
  });
});

describe('the loader refuses', () => {
  it('a fragment sourced any other way than the directive then the source line', () => {
    expect(() => inlineFragments('x.sh', '. ./lib/common.sh\necho hi')).toThrow(/sourced only as/);
    expect(() => inlineFragments('x.sh', '# shellcheck source=lib/common.sh\necho not a source line')).toThrow(/must be followed/);
    expect(() => inlineFragments('x.sh', 'source /etc/profile')).toThrow(/sourced only as/);
  });

  it('exit codes in lib/common.sh that differ from EXIT (the adapter reads EXIT)', () => {
    const common = readFileSync(join(SCRIPTS_DIR, 'lib/common.sh'), 'utf8');
    expect(() => checkExitCodes(common)).not.toThrow();
    expect(() => checkExitCodes(common.replace('EXIT_FAILED=11', 'EXIT_FAILED=13'))).toThrow(/EXIT_FAILED=13 but EXIT says 11/);
    expect(() => checkExitCodes(common.replace(/^EXIT_NOT_CONFIRMED=.*$/m, ''))).toThrow(/EXIT_NOT_CONFIRMED=\(missing\)/);
  });
});
