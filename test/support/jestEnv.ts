// Local and CI machines run Node 20 (Lambda runs 22): the SDK's notice about it is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Handlers log through Powertools: keep test output for failures.
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// Powertools Tracer is off outside Lambda anyway; say so for anyone reading the environment.
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
process.env.CC1_RECONCILE_INTERVAL_MS ??= "0"; // tests that need the local schedule ask for it (local-reconciler.int.test.ts)
