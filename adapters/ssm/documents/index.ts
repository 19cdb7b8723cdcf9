/**
 * The project's SSM Command documents (schema 2.2), built once here and used by CDK
 * (infra/), by the local Run Command endpoint (local/runCommand/) and by the tests.
 *
 * A document is its definition (./definitions.ts: description, parameters with their
 * patterns, timeout) plus its script, a real POSIX sh file adapters/ssm/scripts/<key>.sh
 * that `npm run lint:sh` (bash -n, shellcheck) checks. Shared fragments live in
 * scripts/lib/*.sh; a script (or a fragment) pulls one in with the two lines
 *
 *     # shellcheck source=lib/common.sh
 *     . "$(dirname "$0")/lib/common.sh"
 *
 * and this loader replaces them with the fragment's text (each fragment once), because
 * SSM sends a host only the document's text. The loader also fills `@ALL_MKFS_TOOLS@`
 * from domain/catalog.ts and refuses to build the documents when lib/common.sh's
 * EXIT_* variables differ from EXIT.
 *
 * This module reads those files next to its source when it loads: code that runs in a
 * Lambda imports ./definitions.ts instead (.dependency-cruiser.cjs keeps functions/
 * from reaching this module; a bundle has no .sh files).
 *
 * Rules every document follows (SPEC 4.4):
 * - every parameter has a tight, anchored `allowedPattern`, checked by SSM before the
 *   command reaches a host;
 * - values reach the script only as environment variables (`interpolationType: ENV_VAR`
 *   makes SSM export parameter `X` as `SSM_X`), always double-quoted; no `{{ }}`;
 * - scripts are POSIX sh (the SSM agent runs runShellScript steps with `sh`);
 * - exit codes tell the adapter what went wrong (see EXIT), and a marker line
 *   `CC1_ERROR=<kind>: ...` on stderr says the same for humans reading the logs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_MKFS_TOOLS } from '../../../domain/catalog';
import { DEFAULT_DOCUMENT_NAMES, DEFINITIONS, type DocumentKey, EXIT, type SsmCommandDocument } from './definitions';

export * from './definitions';

/** adapters/ssm/scripts, found from this source file (tsx, jest and cdk run the TypeScript in place). */
export const SCRIPTS_DIR = join(__dirname, '..', 'scripts');

const readScript = (relative: string): string => readFileSync(join(SCRIPTS_DIR, relative), 'utf8');

/** Every .sh under SCRIPTS_DIR, relative to it: the documents' scripts, then lib/. */
export const scriptFiles = (): string[] => [
  ...readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith('.sh')).sort(),
  ...readdirSync(join(SCRIPTS_DIR, 'lib')).filter((f) => f.endsWith('.sh')).sort().map((f) => `lib/${f}`),
];

const SOURCE_DIRECTIVE = /^# shellcheck source=(lib\/[a-z0-9-]+\.sh)$/;
const sourceLine = (fragment: string): string => `. "$(dirname "$0")/${fragment}"`;

/**
 * `text` (the file scripts/`file`) with each sourced fragment pasted in place of its
 * directive and source line, recursively, each fragment once (`seen`).
 */
export function inlineFragments(file: string, text: string, seen: Set<string> = new Set()): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fragment = SOURCE_DIRECTIVE.exec(line)?.[1];
    if (fragment !== undefined) {
      if (lines[i + 1] !== sourceLine(fragment)) {
        throw new Error(`scripts/${file}:${i + 1}: "# shellcheck source=${fragment}" must be followed by the line ${sourceLine(fragment)}`);
      }
      i++;
      if (!seen.has(fragment)) {
        seen.add(fragment);
        out.push(inlineFragments(fragment, readScript(fragment), seen).replace(/\n+$/, ''));
      }
      continue;
    }
    // On the host only the document's text arrives: nothing else may be read from $0's folder.
    if (/^\s*(\.|source)\s/.test(line) || line.includes('$(dirname "$0")')) {
      throw new Error(`scripts/${file}:${i + 1}: a fragment is sourced only as "# shellcheck source=lib/<name>.sh" then ${sourceLine('lib/<name>.sh')}`);
    }
    out.push(line);
  }
  return out.join('\n');
}

/** `badParameter` -> `BAD_PARAMETER`, as lib/common.sh spells EXIT.badParameter. */
const shellName = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

/** Throws unless the EXIT_<NAME>=<n> lines of `commonSh` are exactly EXIT (but `ok`, a plain `exit 0`). */
export function checkExitCodes(commonSh: string): void {
  const inShell = new Map([...commonSh.matchAll(/^EXIT_([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  const expected = new Map(
    Object.entries(EXIT)
      .filter(([key]) => key !== 'ok')
      .map(([key, code]) => [shellName(key), String(code)]),
  );
  const wrong = [...new Set([...inShell.keys(), ...expected.keys()])]
    .filter((name) => inShell.get(name) !== expected.get(name))
    .map((name) => `EXIT_${name}=${inShell.get(name) ?? '(missing)'} but EXIT says ${expected.get(name) ?? '(none)'}`);
  if (wrong.length > 0) throw new Error(`scripts/lib/common.sh disagrees with EXIT (adapters/ssm/documents/definitions.ts): ${wrong.join('; ')}`);
}

// The tool names go into the script as words: they come from the catalogue, never from
// a request, and this check keeps it that way.
const mkfsTools = ALL_MKFS_TOOLS.map((tool) => {
  if (!/^mkfs\.[a-z0-9]+$/.test(tool)) throw new Error(`not a mkfs tool name: ${tool}`);
  return tool;
});

/** `@NAME@` in a script: what the loader puts there. */
const PLACEHOLDERS: Record<string, string> = { ALL_MKFS_TOOLS: mkfsTools.join(' ') };

const fillPlaceholders = (file: string, text: string): string =>
  text.replace(/@([A-Z][A-Z0-9_]*)@/g, (_, name: string) => {
    const value = PLACEHOLDERS[name];
    if (value === undefined) throw new Error(`scripts/${file}: unknown placeholder @${name}@`);
    return value;
  });

/** The self-contained script of a document, as its runShellScript step runs it. */
export function renderScript(key: DocumentKey): string {
  const file = `${key}.sh`;
  return fillPlaceholders(file, inlineFragments(file, readScript(file))).trim();
}

checkExitCodes(readScript('lib/common.sh'));

const buildDocument = (key: DocumentKey): SsmCommandDocument => {
  const { description, parameters, timeoutSeconds } = DEFINITIONS[key];
  return {
    schemaVersion: '2.2',
    description,
    parameters,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: key,
        inputs: { runCommand: renderScript(key).split('\n'), interpolationType: 'ENV_VAR', timeoutSeconds },
      },
    ],
  };
};

const DOCUMENT_KEYS = Object.keys(DEFINITIONS) as DocumentKey[];

export const DOCUMENTS: Record<DocumentKey, { name: string; content: SsmCommandDocument }> = Object.fromEntries(
  DOCUMENT_KEYS.map((key) => [key, { name: DEFAULT_DOCUMENT_NAMES[key], content: buildDocument(key) }]),
) as Record<DocumentKey, { name: string; content: SsmCommandDocument }>;

/** Documents by name, as a Run Command endpoint looks them up. */
export const documentsByName = (
  names: Record<DocumentKey, string> = DEFAULT_DOCUMENT_NAMES,
): Map<string, SsmCommandDocument> => new Map(DOCUMENT_KEYS.map((key) => [names[key], DOCUMENTS[key].content]));
