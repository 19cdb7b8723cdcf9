/**
 * One rule for ids (domain/ids.ts), and every place that checks one agrees with it: the
 * REST and CC1 bodies, the JWT's user id, VM state events, and the SSM documents'
 * allowedPatterns that guard what reaches a host. An 11-digit user id used to pass auth
 * and then fail CreateDiskFile's UserId pattern (10 digits): the image ended `failed`.
 */
import { DISK_CONTROLLERS, FILESYSTEMS } from '../../domain/catalog';
import { ID_PATTERN } from '../../domain/ids';
import { DOCUMENTS } from '../../adapters/ssm/documents';
import { PATTERNS } from '../../adapters/ssm/patterns';
import { callerFromClaims } from '../../functions/shared/identity';
import { id } from '../../functions/shared/input';
import { parseVmEvent } from '../../functions/vmEvents/vmStateEvent';

const accepted = ['1', '42', '12345678901', '999999999999999'];
const refused = ['0', '007', '1234567890123456', '-1', '1.5', ''];

const passesAuth = (userId: string) => {
  try {
    callerFromClaims({ sub: userId });
    return true;
  } catch {
    return false;
  }
};
const passesVmEvent = (userId: string) => {
  try {
    parseVmEvent({ source: 'cc1.hypervisor', 'detail-type': 'VM State Change', detail: { vmId: 7, userId: Number(userId), domain: `vm-7-${userId}`, hostId: 'i-0123456789abcdef0', state: 'running', time: '2026-12-04T05:00:00Z' } });
    return true;
  } catch {
    return false;
  }
};
/** Every id parameter of every SSM document (UserId, ImageId) and the domain names that carry ids. */
const ssmIdPatterns = Object.values(DOCUMENTS).flatMap(({ content }) =>
  Object.entries(content.parameters ?? {}).filter(([name]) => name === 'UserId' || name === 'ImageId').map(([, p]) => new RegExp(p.allowedPattern)),
);

test.each(accepted)('id %s passes every check: the rule, a JSON body, the token, a VM event, every SSM id parameter and domain name', (text) => {
  expect(ID_PATTERN.test(text)).toBe(true);
  expect(id.safeParse(Number(text)).success).toBe(true);
  expect(passesAuth(text)).toBe(true);
  expect(passesVmEvent(text)).toBe(true);
  expect(ssmIdPatterns.length).toBeGreaterThanOrEqual(4);
  for (const pattern of ssmIdPatterns) expect(pattern.test(text)).toBe(true);
  expect(new RegExp(PATTERNS.domain).test(`vm-${text}-${text}`)).toBe(true);
});

test.each(refused)('id %j is refused by every check alike', (text) => {
  expect(ID_PATTERN.test(text)).toBe(false);
  expect(passesAuth(text)).toBe(false);
  for (const pattern of ssmIdPatterns) expect(pattern.test(text)).toBe(false);
  expect(new RegExp(PATTERNS.domain).test(`vm-${text}-7`)).toBe(false);
  if (/^[0-9]+$/.test(text) && !text.startsWith('0')) {
    expect(id.safeParse(Number(text)).success).toBe(false);
    expect(passesVmEvent(text)).toBe(false);
  }
});

test('the SSM bus and filesystem patterns accept exactly the catalogue\'s names', () => {
  const bus = new RegExp(PATTERNS.bus);
  const filesystem = new RegExp(PATTERNS.filesystem);
  expect(DISK_CONTROLLERS.every((c) => bus.test(c.name))).toBe(true);
  expect(FILESYSTEMS.every((f) => filesystem.test(f.name))).toBe(true);
  for (const other of ['virtio2', 'nvme', '', 'ext3', 'raw;rm']) {
    expect(bus.test(other) || filesystem.test(other)).toBe(false);
  }
});
