/**
 * The limits of docs/openapi.yaml's requests, as probes for the server (issue 19: "a
 * client generated from the spec sends what the server refuses").
 *
 * Walking every operation's parameters (path, query, header) and request body, it finds
 * each value a request carries (a "site") and proposes values around every limit the
 * document states there (minLength, maxLength, minimum, maximum, minItems, maxItems,
 * uniqueItems, pattern, enum; `if`/`then` conditions included), and far out on every
 * side the document leaves open (no maxLength: 4,096 characters must do; no
 * uniqueItems: a repeat must do). Whether a value is allowed is not decided here but by
 * the document itself (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses): the server must
 * then agree, 400 exactly when the document refuses. A new limit in the document is
 * probed without touching the tests.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { seededRandom } from './seed';

type Json = any;

export type Place = 'path' | 'query' | 'header' | 'body';

export interface Operation {
  method: string;
  path: string;
  /** `METHOD /path`, as the route table names it. */
  key: string;
  /** The body's schema, as a pointer into the document (undefined: no body). */
  bodyRef?: string;
  /** A body the document allows, with only the required fields (the probes change one field). */
  baseline?: Record<string, unknown>;
  /** Path parameters by name (the probes fill the others with fixtures). */
  pathParams: string[];
}

export interface Site {
  operation: Operation;
  in: Place;
  /** The parameter's name; for the body, the field's path (`storageImageIds[]`: an item). */
  name: string;
  /** Body only: where the value goes (`'[]'`: the only item of an array). */
  pointer: (string | number)[];
  /** The value's schema, $refs and allOf resolved (conditions kept under allOf). */
  schema: Json;
  /** Body fields a conditional limit (`if`/`then`) needs. */
  given: Record<string, unknown>;
}

export interface Probe {
  site: Site;
  value: unknown;
  /** The limit the value is next to (`maxLength`), or `open:<keyword>` for a side the document leaves open. */
  limit: string;
}

export const LIMIT_KEYWORDS = ['minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'uniqueItems', 'pattern', 'enum'] as const;

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

/** How far a side the document leaves open is tried. */
const OPEN_STRING_LENGTH = 4096;
const OPEN_ARRAY_LENGTH = 256;

/** Characters a mutation inserts or puts in place of another: controls, blanks, non-ASCII, URL and JSON syntax. */
const MUTATION_ALPHABET = ['0', '1', '9', 'a', 'Z', '_', '-', ' ', '\t', '\u0000', '\u0001', '\u007f', '\u00e9', '\u{1F600}', '/', '.', '%', "'", '"', '\\'];

const pointerPart = (p: string) => p.replace(/~/g, '~0').replace(/\//g, '~1');

const lookup = (doc: Json, ref: string): Json =>
  ref
    .slice(2)
    .split('/')
    .reduce((at: Json, key: string) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);

/** A schema with its $refs followed and its allOf merged; `if`/`then` members stay under allOf. */
export const resolveSchema = (doc: Json, node: Json): Json => {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return node;
  const { $ref, allOf, properties, items, ...rest } = node;
  const out: Json = $ref ? { ...resolveSchema(doc, lookup(doc, $ref)) } : {};
  const conditions: Json[] = [...(out.allOf ?? [])];
  for (const part of (allOf ?? []) as Json[]) {
    const resolved = resolveSchema(doc, part);
    if (resolved.if) conditions.push(resolved);
    else Object.assign(out, resolved);
  }
  Object.assign(out, rest);
  if (rest.if) conditions.push({ if: rest.if, then: rest.then });
  if (properties) out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, resolveSchema(doc, v)]));
  if (items) out.items = resolveSchema(doc, items);
  if (rest.then) out.then = resolveSchema(doc, rest.then);
  if (conditions.length) out.allOf = conditions.map((c) => ({ if: c.if, then: resolveSchema(doc, c.then) }));
  else delete out.allOf;
  return out;
};

const typesOf = (schema: Json): string[] => (Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : schema.enum ? [typeof schema.enum[0]] : []);

/** Distinct values the item schema allows, as many as asked. */
const distinctItems = (items: Json, n: number): unknown[] => {
  const types = typesOf(items);
  if (types.includes('integer')) return Array.from({ length: n }, (_, k) => (items.minimum ?? 1) + k);
  return Array.from({ length: n }, (_, k) => `x${k}`);
};

/** A value the schema allows, as plain as possible. */
export const minimalValue = (schema: Json): unknown => {
  if (schema.enum) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  const types = typesOf(schema);
  if (types.includes('object')) {
    return Object.fromEntries(((schema.required ?? []) as string[]).map((k) => [k, minimalValue(schema.properties[k])]));
  }
  if (types.includes('integer')) return schema.minimum ?? 1;
  if (types.includes('array')) return distinctItems(schema.items ?? {}, schema.minItems ?? 0);
  if (types.includes('string')) {
    const n = Math.max(schema.minLength ?? 0, 1);
    const re = schema.pattern ? new RegExp(schema.pattern, 'u') : undefined;
    const fill = ['x', 'k', '1'].map((c) => c.repeat(n)).find((s) => !re || re.test(s));
    if (fill) return fill;
    return fc.sample(fc.stringMatching(re!), { numRuns: 1, seed: 1 })[0];
  }
  if (types.includes('boolean')) return false;
  return null;
};

/** One-character edits (insert, delete, replace) of `s`, chosen by `random`. */
const mutations = (s: string, count: number, random: () => number): string[] => {
  const out: string[] = [];
  const chars = [...s];
  for (let i = 0; i < count; i++) {
    const at = Math.floor(random() * (chars.length + 1));
    const c = MUTATION_ALPHABET[Math.floor(random() * MUTATION_ALPHABET.length)]!;
    const kind = Math.floor(random() * 3);
    const next = [...chars];
    if (kind === 0 || chars.length === 0) next.splice(at, 0, c);
    else if (kind === 1) next.splice(Math.min(at, chars.length - 1), 1);
    else next.splice(Math.min(at, chars.length - 1), 1, c);
    out.push(next.join(''));
  }
  return out;
};

/** Values around each limit of `schema`, and far out on each side it leaves open. */
export const probeValues = (schema: Json, seed: number): { value: unknown; limit: string }[] => {
  const random = seededRandom(seed);
  const out: { value: unknown; limit: string }[] = [];
  const add = (limit: string, ...values: unknown[]) => values.forEach((value) => out.push({ value, limit }));
  const types = typesOf(schema);
  if (schema.enum) {
    add('enum', ...schema.enum);
    for (const v of schema.enum as unknown[]) if (typeof v === 'string') add('enum', v.toUpperCase(), `${v}x`, v.slice(1), '');
  } else if (types.includes('string')) {
    // Lengths are counted in code points (JSON Schema's "characters"): an astral filler shows it.
    const fills = (n: number) => (n < 0 ? [] : ['x', '\u{1F600}'].map((c) => c.repeat(n)));
    if (schema.minLength !== undefined) add('minLength', ...fills(schema.minLength), ...fills(schema.minLength - 1));
    else add('open:minLength', '');
    if (schema.maxLength !== undefined) add('maxLength', ...fills(schema.maxLength), ...fills(schema.maxLength + 1));
    else if (!schema.pattern) add('open:maxLength', ...fills(OPEN_STRING_LENGTH));
    if (schema.pattern) {
      const re = new RegExp(schema.pattern, 'u');
      const matching = [
        ...fc.sample(fc.stringMatching(re), { numRuns: 5, seed }),
        ...fc.sample(fc.stringMatching(re, { size: 'large' }), { numRuns: 3, seed: seed + 1 }),
      ];
      add('pattern', ...matching);
      for (const m of matching) add('pattern', ...mutations(m, 2, random));
      // And each character of the alphabet put into some matching value once: a class that
      // refuses one character (NUL) is then sure to be met.
      for (const c of MUTATION_ALPHABET) {
        const m = [...matching[Math.floor(random() * matching.length)]!];
        m.splice(Math.floor(random() * (m.length + 1)), 0, c);
        add('pattern', m.join(''));
      }
    }
  } else if (types.includes('integer')) {
    if (schema.minimum !== undefined) add('minimum', schema.minimum, schema.minimum - 1);
    else add('open:minimum', -Number.MAX_SAFE_INTEGER);
    if (schema.maximum !== undefined) add('maximum', schema.maximum, schema.maximum + 1);
    else add('open:maximum', Number.MAX_SAFE_INTEGER);
  } else if (types.includes('array')) {
    const items = schema.items ?? {};
    const arrays = (n: number) => (n < 0 ? [] : [distinctItems(items, n)]);
    if (schema.minItems !== undefined) add('minItems', ...arrays(schema.minItems), ...arrays(schema.minItems - 1));
    if (schema.maxItems !== undefined) add('maxItems', ...arrays(schema.maxItems), ...arrays(schema.maxItems + 1));
    else add('open:maxItems', ...arrays(OPEN_ARRAY_LENGTH));
    const [a, b] = distinctItems(items, 2);
    add(schema.uniqueItems ? 'uniqueItems' : 'open:uniqueItems', [a, b], [a, a]);
  }
  if (types.includes('null')) add('type', null);
  // One value once per limit.
  const seen = new Set<string>();
  return out.filter((p) => {
    const key = `${p.limit}\u0000${JSON.stringify(p.value)}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
};

const hasProbes = (schema: Json) => ['string', 'integer', 'array'].some((t) => typesOf(schema).includes(t)) || schema.enum;

/** The sites of a body schema: each field, each array's item, each field a condition limits. */
const bodySites = (operation: Operation, schema: Json, pointer: (string | number)[] = [], given: Record<string, unknown> = {}): Site[] => {
  const sites: Site[] = [];
  const name = (p: (string | number)[]) => p.join('.').replace(/\.\[\]/g, '[]');
  for (const [field, sub] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) {
    const at = [...pointer, field];
    if (hasProbes(sub)) sites.push({ operation, in: 'body', name: name(at), pointer: at, schema: sub, given });
    if (typesOf(sub).includes('array') && sub.items && hasProbes(sub.items)) {
      sites.push({ operation, in: 'body', name: name([...at, '[]']), pointer: [...at, '[]'], schema: sub.items, given });
    }
  }
  // `if: {properties: {f: {const: v}}}, then: {properties: {g: limits}}`: g's limits when f is v.
  for (const condition of (schema.allOf ?? []) as Json[]) {
    const when = Object.fromEntries(
      Object.entries((condition.if?.properties ?? {}) as Record<string, Json>)
        .filter(([, s]) => s.const !== undefined)
        .map(([k, s]) => [k, s.const]),
    );
    for (const [field, limits] of Object.entries((condition.then?.properties ?? {}) as Record<string, Json>)) {
      const sub = { ...schema.properties?.[field], ...limits };
      sites.push({ operation, in: 'body', name: `${name([...pointer, field])} when ${JSON.stringify(when)}`, pointer: [...pointer, field], schema: sub, given: { ...given, ...when } });
    }
  }
  return sites;
};

export interface Limits {
  doc: Json;
  operations: Operation[];
  sites: Site[];
  /** Whether the document allows `value` at `site` (the rest of the request as the baseline). */
  allows(site: Site, value: unknown): boolean;
  /** The baseline body with `value` at the site (and the fields its condition needs). */
  bodyWith(site: Site, value: unknown): Record<string, unknown>;
}

export const openapiLimits = (doc: Json): Limits => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.yaml');
  const operations: Operation[] = [];
  const sites: Site[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of METHODS.filter((m) => item[m])) {
      const op = item[method];
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p: Json) => (p.$ref ? lookup(doc, p.$ref) : p));
      const schemaNode = op.requestBody?.content?.['application/json']?.schema;
      const bodyRef = schemaNode ? `openapi.yaml#/${['paths', path, method, 'requestBody', 'content', 'application/json', 'schema'].map(pointerPart).join('/')}` : undefined;
      const bodySchema = schemaNode ? resolveSchema(doc, schemaNode) : undefined;
      const operation: Operation = {
        method: method.toUpperCase(),
        path,
        key: `${method.toUpperCase()} ${path}`,
        ...(bodyRef ? { bodyRef, baseline: minimalValue(bodySchema) as Record<string, unknown> } : {}),
        pathParams: params.filter((p: Json) => p.in === 'path').map((p: Json) => p.name),
      };
      operations.push(operation);
      for (const p of params) {
        const schema = resolveSchema(doc, p.schema);
        if (hasProbes(schema)) sites.push({ operation, in: p.in, name: p.name, pointer: [], schema, given: {} });
      }
      if (bodySchema) sites.push(...bodySites(operation, bodySchema));
    }
  }

  const compiled = new Map<Json, ValidateFunction>();
  const validatorOf = (schema: Json) => {
    let v = compiled.get(schema);
    if (!v) compiled.set(schema, (v = ajv.compile(schema)));
    return v;
  };
  const bodyWith = (site: Site, value: unknown): Record<string, unknown> => {
    const body = structuredClone({ ...site.operation.baseline, ...site.given }) as Record<string, unknown>;
    let at: Json = body;
    site.pointer.forEach((part, i) => {
      const last = i === site.pointer.length - 1;
      if (site.pointer[i + 1] === '[]') {
        at[part] = [value];
        at = undefined;
      } else if (at !== undefined && last) at[part] = value;
      else if (at !== undefined) at = at[part] ??= {};
    });
    return body;
  };
  const allows = (site: Site, value: unknown): boolean => {
    if (site.in === 'body') {
      const validate = ajv.getSchema(site.operation.bodyRef!);
      if (!validate) throw new Error(`OpenAPI: cannot compile ${site.operation.bodyRef}`);
      return validate(bodyWith(site, value)) as boolean;
    }
    return validatorOf(site.schema)(value) as boolean;
  };
  return { doc, operations, sites, allows, bodyWith };
};
