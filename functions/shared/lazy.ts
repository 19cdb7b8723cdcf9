/**
 * The one way this code base defers building something until first use: clients,
 * adapters and the container are made by the first request that needs them, once per
 * Lambda container, so a cold start pays only for what its first request uses.
 */
export const lazy = <T>(make: () => T): (() => T) => {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
};
