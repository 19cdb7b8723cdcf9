/**
 * Paths that one reader routes to one function and the next reader to another: dot
 * segments (`/a/../b`, `/a/./b`), encoded slashes and dots (`%2F`, `%2E`) and
 * backslashes (`\`, `%5C`, which URL parsers treat as `/`). A URL parser in front of a
 * handler (the local server's, a proxy's, API Gateway's) may resolve them before
 * routing: `POST /user/storage_image/get_list/../delete/` then ran `delete`. No path of
 * either API needs them, so they are refused before routing, by the local server and by
 * both handlers, whatever the layer in front did with them.
 */

const DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$)/;
const ENCODED_SLASH_DOT_OR_BACKSLASH = /%(2f|2e|5c)/i;

/** Why `path` (the raw path, without the query) is refused, or undefined when it is plain. */
export const pathTrick = (path: string): string | undefined => {
  if (DOT_SEGMENT.test(path)) return 'a "." or ".." segment';
  if (ENCODED_SLASH_DOT_OR_BACKSLASH.test(path)) return 'an encoded "/", "." or "\\" (%2F, %2E, %5C)';
  if (path.includes('\\')) return 'a "\\"';
  return undefined;
};

/** The message of the refusal, naming what was found. */
export const pathTrickMessage = (reason: string): string =>
  `The path contains ${reason}; such paths are refused because they could name another route.`;

/** Paths of the CC1-compatible API (SPEC 4.2) start with one of these. */
export const isCc1ApiPath = (path: string): boolean => /^\/(user|admin_cm)\//.test(path);
