/** The little the application logs through; Powertools Logger fits it as it is. */
export interface Logger {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
