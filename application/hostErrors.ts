/** How a failed host command reads to a user: 409 with the CC1 code, or 503. */
import { DomainError } from '../domain/errors';
import { HostCommandError } from './ports';

export const hostError = (error: unknown, code: 'storage_image_attach' | 'storage_image_detach' | 'image_resize'): Error => {
  if (!(error instanceof HostCommandError)) return error as Error;
  const verb = code === 'storage_image_attach' ? 'attach' : code === 'storage_image_detach' ? 'detach' : 'resiz';
  switch (error.kind) {
    case 'timeout':
      return new DomainError('hypervisor_unavailable', `The hypervisor did not answer in time; the disk was not ${verb}ed.`);
    case 'unreachable':
      return new DomainError('hypervisor_unavailable', `The VM's hypervisor cannot be reached; the disk was not ${verb}ed.`);
    case 'unknown_domain':
      return new DomainError(code, `The VM is not running on its hypervisor; the disk was not ${verb}ed.`);
    case 'failed':
      return new DomainError(code, verb === 'resiz' ? 'The host refused to resize the disk.' : `The hypervisor refused to ${verb} the disk.`);
  }
};
