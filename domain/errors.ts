/**
 * Every refusal the service can give, by CC1 error code, with its HTTP status.
 * This is the only place codes and statuses are paired; both APIs read it.
 */
export const ERROR_CODES = {
  // Input
  validation: 400,
  image_invalid_size: 400,
  // Identity
  unauthorized: 401,
  user_permission: 403,
  image_permission: 403,
  admin_required: 403,
  // Lookup
  image_get: 404,
  vm_get: 404,
  not_found: 404,
  // State and conflicts
  user_storage_limit: 409,
  image_attached: 409,
  image_delete: 409,
  image_edit: 409,
  image_resize: 409,
  image_retry: 409,
  storage_image_attach: 409,
  storage_image_detach: 409,
  concurrency_conflict: 409,
  idempotency_in_progress: 409,
  // The request is valid, but no storage host has the filesystem's mkfs tool: a conflict
  // with the deployment's current state (installing the package makes the same request
  // succeed), not a malformed request, hence 409 and not 400.
  filesystem_unavailable: 409,
  idempotency_key_reused: 422,
  // The hypervisor or storage host could not be reached or did not answer in time
  hypervisor_unavailable: 503,
  // The request ran out of time without waiting on a host (the service is overloaded)
  timeout: 503,
  // The database did not answer, refused the connection, or throttled the request
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A broken rule. `message` is safe to show to the user; it never carries host output. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }
}

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;

export function fail(code: ErrorCode, message: string): never {
  throw new DomainError(code, message);
}
