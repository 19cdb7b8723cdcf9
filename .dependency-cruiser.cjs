/** Architecture rules, checked on every `npm test`. */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'domain/ holds the rules only: no AWS SDK, no Lambda tooling, no Node I/O.',
      severity: 'error',
      from: { path: '^domain/' },
      to: {
        pathNot: '^domain/',
      },
    },
    {
      name: 'application-has-no-aws',
      comment: 'application/ talks to the world through ports; adapters implement them.',
      severity: 'error',
      from: { path: '^application/' },
      to: { path: ['^adapters/', '^functions/', '^local/', '^infra/', 'node_modules/@aws-sdk', 'node_modules/@middy', 'node_modules/aws-cdk-lib'] },
    },
    {
      name: 'local-only-stays-local',
      comment: 'The local stack (HS256 tokens, dynalite, simulated virsh) must be impossible to deploy: nothing deployable imports local/.',
      severity: 'error',
      from: { path: '^(domain|application|adapters|functions|infra)/' },
      to: { path: '^local/' },
    },
    {
      name: 'client-stands-alone',
      comment: 'client/ is its own package for portal authors: it may use only itself and openapi-fetch (its one dependency), nothing of the service.',
      severity: 'error',
      from: { path: '^client/' },
      to: { pathNot: ['^client/', 'node_modules/openapi-fetch/', 'node_modules/openapi-typescript-helpers/'] },
    },
    {
      name: 'bundles-read-no-scripts',
      comment: 'adapters/ssm/documents/index.ts reads the .sh files from disk, which a Lambda bundle does not have: deployable runtime code imports ./definitions instead.',
      severity: 'error',
      from: { path: '^(domain|application|adapters|functions)/', pathNot: '^adapters/ssm/documents/' },
      to: { path: '^adapters/ssm/documents/index\\.ts$' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
