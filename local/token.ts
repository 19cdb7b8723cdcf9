/**
 * `npm run token -- --user 42 [--admin] [--portal] [--hours 12]`: prints a local token.
 */
import { parseArgs } from 'node:util';
import { ID_PATTERN } from '../domain/ids';
import { signLocalToken } from './jwt';

const { values } = parseArgs({
  options: {
    user: { type: 'string' },
    admin: { type: 'boolean', default: false },
    portal: { type: 'boolean', default: false },
    hours: { type: 'string', default: '12' },
  },
});

if (!values.user || !ID_PATTERN.test(values.user)) {
  console.error('usage: npm run token -- --user <CC1 user id> [--admin] [--portal] [--hours 12]');
  process.exit(2);
}

signLocalToken({ userId: values.user, admin: values.admin, portal: values.portal, expiresInSeconds: Number(values.hours) * 3600 }).then(
  (token) => console.log(token),
);
