/**
 * Local defaults, set before any handler module loads (they read the environment
 * when loaded): quieter logs and no metric lines on stdout. Set them to override.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false'; // no X-Ray daemon here (the Tracer is off outside Lambda anyway)
process.env.POWERTOOLS_SERVICE_NAME ??= 'cc1-storage-images-local';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
export {};
