/**
 * docs/openapi.yaml as a contract for real replies: `checkRestReply(method, path,
 * status, body)` finds the documented operation and response and validates the body
 * against its schema (JSON Schema 2020-12, as OpenAPI 3.1 uses) with ajv.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

export const OPENAPI_PATH = join(resolve(__dirname, '..', '..'), 'docs', 'openapi.yaml');

type Json = Record<string, any>;

export const loadOpenapi = (): Json => parse(readFileSync(OPENAPI_PATH, 'utf8')) as Json;

let cached: { doc: Json; ajv: Ajv2020; templates: { template: string; pattern: RegExp }[] } | undefined;

const contract = () => {
  if (cached) return cached;
  const doc = loadOpenapi();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.yaml');
  const templates = Object.keys(doc.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`),
  }));
  cached = { doc, ajv, templates };
  return cached;
};

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Resolves `{$ref: '#/components/responses/X'}` of a response object. */
const deref = (doc: Json, node: Json): Json => {
  if (node && typeof node.$ref === 'string' && node.$ref.startsWith('#/')) {
    const target = node.$ref
      .slice(2)
      .split('/')
      .reduce((at: Json, key: string) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    return deref(doc, target);
  }
  return node;
};

/** Throws when the reply is not what docs/openapi.yaml says this operation answers. */
export const checkRestReply = (method: string, pathWithQuery: string, status: number, body: unknown): void => {
  const { doc, ajv, templates } = contract();
  const path = pathWithQuery.split('?')[0]!;
  const found = templates.find((t) => t.pattern.test(path));
  if (!found) throw new Error(`OpenAPI: no documented path for ${method} ${path}`);
  const operation = doc.paths[found.template][method.toLowerCase()];
  if (!operation) throw new Error(`OpenAPI: ${method} ${found.template} is not documented`);
  const response = operation.responses[String(status)];
  if (!response) {
    throw new Error(`OpenAPI: ${method} ${found.template} does not document status ${status} (body ${JSON.stringify(body)})`);
  }
  const resolved = deref(doc, response);
  if (!resolved.content) return;
  const ref = `openapi.yaml#/${pointer('paths', found.template, method.toLowerCase(), 'responses', String(status))}`;
  const schemaRef = response.$ref
    ? `openapi.yaml${response.$ref}/content/application~1json/schema`
    : `${ref}/content/application~1json/schema`;
  const validate = ajv.getSchema(schemaRef);
  if (!validate) throw new Error(`OpenAPI: cannot compile ${schemaRef}`);
  if (!validate(body)) {
    throw new Error(
      `OpenAPI: ${method} ${path} -> ${status} does not match ${schemaRef}: ${ajv.errorsText(validate.errors)}\nbody: ${JSON.stringify(body)}`,
    );
  }
};

/** Throws when `value` does not match the component schema `name` of docs/openapi.yaml. */
export const checkComponentSchema = (name: string, value: unknown): void => {
  const { ajv } = contract();
  const validate = ajv.getSchema(`openapi.yaml#/components/schemas/${name}`);
  if (!validate) throw new Error(`OpenAPI: no schema ${name}`);
  if (!validate(value)) throw new Error(`OpenAPI: does not match ${name}: ${ajv.errorsText(validate.errors)}\nvalue: ${JSON.stringify(value)}`);
};
