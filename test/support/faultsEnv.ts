/**
 * Imported first by the reconcile and fault tests (before anything that makes a
 * logger): quiet logs (the reconciler warns on every repair, the hypervisor adapter
 * on every injected failure; the tests assert on them instead), no metric lines.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_SERVICE_NAME ??= 'cc1-storage-images-local';
export {};
