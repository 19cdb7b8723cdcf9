/**
 * fast-check generators of hostile requests for both APIs (test/int/reliability-hostile):
 * malformed JSON, wrong types, huge and negative numbers, unicode (astral, RTL, NUL,
 * lone surrogates), 100 KB strings, path traversal and shell metacharacters aimed at
 * a canary file, in every body field, path parameter and query parameter of every route.
 */
import fc from 'fast-check';
import type { RawRequest } from './reliability';

/** Percent-encodes what an HTTP request-target cannot carry (bytes of UTF-8; lone surrogates as U+FFFD). */
export const rawPathEncode = (s: string, keep: RegExp = /[\x21-\x7e]/): string => {
  let out = '';
  for (const ch of s) {
    if (keep.test(ch) && ch !== '#' && ch !== '?') out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
};

/** Full encoding (everything but unreserved characters), lone surrogates included. */
export const fullEncode = (s: string): string => rawPathEncode(s, /[A-Za-z0-9_.~-]/);

/** Header values may carry only visible ASCII here. */
export const headerSafe = (s: string): string => fullEncode(s.slice(0, 1000)).slice(0, 4000);

export interface HostileContext {
  /** Absolute path of the canary file that a shell injection would create. */
  canary: string;
  /** Ids that exist (fixtures) so that some requests reach deep into the handlers. */
  imageIds: number[];
  vmIds: number[];
  userIds: number[];
}

const LONG = 100_000;

export const shellPayloads = (canary: string): string[] => [
  `; touch ${canary}`,
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `'; touch ${canary}; '`,
  `"; touch ${canary}; "`,
  `" && touch ${canary} && "`,
  `\ntouch ${canary}\n`,
  `| touch ${canary}`,
  `& touch ${canary} &`,
  `$(id)`,
  '`id`',
  '${IFS}touch${IFS}' + canary,
  `x'$(touch ${canary})'`,
  `a\r\ntouch ${canary}`,
  `--help; touch ${canary}`,
  `-rf /`,
];

export const traversalPayloads = [
  '../../etc/passwd',
  '..',
  '../',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e%2f',
  '..\\..\\windows',
  '/etc/shadow',
  '....//....//',
  '%252e%252e%252f',
  '1/../2',
  '1%2f..%2f2',
  '%00',
  '1%00',
  '%',
  '%zz',
  '%E0%A4%A',
  '%C0%AE%C0%AE/',
];

export const unicodePayloads = [
  '\u0000',
  'a\u0000b',
  '\u202egnp.exe', // RTL override
  '\u200f\u05e9\u05dc\u05d5\u05dd', // RTL mark + Hebrew
  '\u0645\u0631\u062d\u0628\u0627',
  '\ud835\udd4f\ud835\udd38', // astral (mathematical double-struck)
  '\ud83d\udca9\ud83c\udff3\ufe0f\u200d\ud83c\udf08',
  '\ud800', // lone high surrogate
  '\udc00x', // lone low surrogate
  'x\udbff',
  '\ufeff',
  '\uffff',
  '\u0085\u2028\u2029',
  'Ａ０１',
  '\u0663', // Arabic-Indic digit three
  '\u00a0',
  '\t',
];

export const injectionPayloads = [
  "'/><source file='/etc/shadow'/><target dev='vda",
  '<disk type="block"/>',
  '{{7*7}}',
  '%s%s%n',
  "' OR '1'='1",
  '__proto__',
  'constructor',
  'null',
  'undefined',
  'NaN',
  '-1',
  '0',
  '1e309',
  '9007199254740993',
  '0x10',
  '1.5',
  ' 7 ',
  '+7',
  '07',
  'true',
];

/** Any hostile string: payloads, their mixes with plausible text, random unicode, 100 KB strings. */
export const hostileString = (ctx: HostileContext): fc.Arbitrary<string> => {
  const payload = fc.constantFrom(...shellPayloads(ctx.canary), ...traversalPayloads, ...unicodePayloads, ...injectionPayloads);
  const loneSurrogates = fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 8 });
  return fc.oneof(
    { weight: 6, arbitrary: payload },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('disk', 'a', 'vm-1-2', 'vdb', ''), payload, fc.constantFrom('', 'x', '\u0000')).map(([a, p, b]) => a + p + b) },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
    { weight: 1, arbitrary: loneSurrogates },
    { weight: 1, arbitrary: payload.map((p) => (p || 'A').repeat(Math.ceil(LONG / Math.max(1, p.length))).slice(0, LONG)) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'A'.repeat(46), 'é'.repeat(45), '\ud83d\ude00'.repeat(45), '\ud83d\ude00'.repeat(46)) },
  );
};

export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double(), // NaN and ±Infinity serialise as null
  fc.constantFrom(0, -0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, Number.MIN_VALUE, 2 ** 31, 2 ** 32 + 1, 2_000_001, 1e21),
);

/** A value of the wrong type, or a hostile one of the right type. */
export const hostileValue = (ctx: HostileContext): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 4, arbitrary: hostileString(ctx) },
    { weight: 3, arbitrary: hostileNumber },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [1], { $ne: null }, { __proto__: { admin: true } }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.array(hostileString(ctx), { maxLength: 3 }) },
  );

/** A body field: left out, a plausible value, or a hostile one. */
const field = (valid: fc.Arbitrary<unknown>, ctx: HostileContext) =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: valid }, { weight: 5, arbitrary: hostileValue(ctx) });

export type FieldSpec = Record<string, fc.Arbitrary<unknown>>;

/** An object over the route's fields (each valid, hostile or absent), sometimes with extra keys. */
const fieldwiseBody = (spec: FieldSpec, ctx: HostileContext): fc.Arbitrary<unknown> => {
  const entries = Object.entries(spec).map(([k, valid]) => field(valid, ctx).map((v) => [k, v] as const));
  const extra = fc.option(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'admin', 'userId', 'caller_id', 'x'), hostileValue(ctx)), { freq: 4 });
  return fc.tuple(fc.tuple(...entries), extra).map(([pairs, more]) => {
    const body: Record<string, unknown> = {};
    for (const [k, v] of pairs) if (v !== undefined) body[k] = v;
    // defineProperty so that `__proto__` becomes a real key of the JSON text
    if (more) Object.defineProperty(body, more[0], { value: more[1], enumerable: true, configurable: true, writable: true });
    return body;
  });
};

/** JSON text that is not JSON, or JSON with number literals JavaScript cannot hold. */
const malformedJson = (spec: FieldSpec, ctx: HostileContext): fc.Arbitrary<string> => {
  const keys = Object.keys(spec);
  const literal = fc.constantFrom('1e999', '-1e999', '99999999999999999999999999', '-0', '0.0000001', '1E+2', '0x10', 'NaN', 'Infinity', '01', '.5', '"1"', 'tru', 'nul');
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.constantFrom('{', '}', '[', '{"', '{"name":', '{"name":"a",}', "{'name':'a'}", '{name:1}', '\u0000', '', ' ', 'null', '[]', '0', '"x"', '{"a":1}{"b":2}', '\ufeff{}'),
    fc.tuple(fc.constantFrom(...(keys.length ? keys : ['x'])), literal).map(([k, lit]) => `{"${k}": ${lit}}`),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v).slice(0, -1)), // truncated
    fc.integer({ min: 33, max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n)), // deep nesting
    fc.integer({ min: 33, max: 5000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
    hostileString(ctx),
  );
};

/** Text fields (names, descriptions): hostile text that still fits, so the request is accepted and its work runs. */
export const TEXT_FIELDS = new Set(['name', 'description']);

const validBody = (spec: FieldSpec, ctx: HostileContext, hostileKey?: string): fc.Arbitrary<Record<string, unknown>> => {
  const fittingText = hostileString(ctx).filter((s) => s.trim().length > 0 && [...s].length <= 45);
  const entries = Object.entries(spec).map(([k, valid]) =>
    (k === hostileKey ? hostileValue(ctx) : TEXT_FIELDS.has(k) ? fc.oneof(valid, fittingText) : valid).map((v) => [k, v] as const),
  );
  return fc.tuple(...entries).map((pairs) => Object.fromEntries(pairs));
};

export const hostileBody = (spec: FieldSpec, ctx: HostileContext): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 4, arbitrary: fieldwiseBody(spec, ctx) },
    // Valid but for hostile text: accepted, so the text travels on to the events, the read model and the host work.
    { weight: 2, arbitrary: validBody(spec, ctx) },
    // Valid but for exactly one field.
    ...(Object.keys(spec).length ? [{ weight: 2, arbitrary: fc.constantFrom(...Object.keys(spec)).chain((k) => validBody(spec, ctx, k)) }] : []),
    { weight: 2, arbitrary: malformedJson(spec, ctx) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

/** A path parameter as sent on the wire: a fixture id, a plausible number, or hostile text (raw or encoded). */
export const hostilePathParam = (ctx: HostileContext, validIds: number[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...validIds).map(String) },
    { weight: 1, arbitrary: fc.constantFrom('0', '-1', '1.0', '01', '9007199254740993', '99999999999999999999', '1e3', '0x1', '+1', '%201', '1%20') },
    { weight: 2, arbitrary: fc.constantFrom(...traversalPayloads) },
    { weight: 3, arbitrary: hostileString(ctx).map((s) => fullEncode(s.slice(0, 2000))) },
    { weight: 2, arbitrary: hostileString(ctx).map((s) => rawPathEncode(s.slice(0, 2000))) },
  );

/** A query string over the route's parameters (and others), hostile values encoded. */
export const hostileQuery = (ctx: HostileContext, keys: string[]): fc.Arbitrary<string> => {
  const value = fc.oneof(
    fc.constantFrom('1', '1000', '1001', '0', '-1', 'true', 'false', 'TRUE', '', 'eyJ4IjoxfQ', 'A'.repeat(3000), ...traversalPayloads),
    hostileString(ctx).map((s) => fullEncode(s.slice(0, 3000))),
    hostileString(ctx).map((s) => rawPathEncode(s.slice(0, 3000))),
  );
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...(keys.length ? keys : ['x'])) }, { weight: 1, arbitrary: hostileString(ctx).map((s) => fullEncode(s.slice(0, 50))) });
  return fc
    .array(fc.tuple(key, value), { maxLength: 4 })
    .map((pairs) => (pairs.length ? '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&') : ''));
};

export const hostileHeaders = (ctx: HostileContext): fc.Arbitrary<Record<string, string>> =>
  fc
    .record(
      {
        // On a third of the requests: it costs two writes before the handler runs.
        'idempotency-key': fc.oneof(fc.constant(''), fc.constant(''), fc.uuid(), hostileString(ctx).map(headerSafe)),
        'content-type': fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', ''),
        'x-forwarded-for': hostileString(ctx).map(headerSafe),
      },
      { requiredKeys: [] },
    )
    .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== '')));

export type TokenKind = 'owner' | 'other' | 'portal' | 'admin' | 'garbage';

export interface GeneratedRequest extends RawRequest {
  /** The route's key (`POST /storage-images/{id}/attach`, `POST /user/storage_image/{fn}/`). */
  route: string;
  api: 'rest' | 'cc1';
  tokenKind: TokenKind;
  /** Image ids named by the request (path or body), for checking where an accepted request wrote. */
  imageIds: number[];
}
