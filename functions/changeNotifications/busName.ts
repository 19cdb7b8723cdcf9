/** The environment variable naming the bus the changeNotifications function publishes on (set by the CDK stack). */
export const CHANGE_EVENT_BUS_ENV = 'CHANGE_EVENT_BUS_NAME';
