/** Three kinds of tests, named by suffix (see README): unit, int, e2e. */
const transform = { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] };
// middy 6 and jose are ESM-only: let swc turn them into CommonJS for jest.
const transformIgnorePatterns = ['node_modules/(?!(@middy|jose)/)'];
const common = { transform, transformIgnorePatterns, testEnvironment: 'node', setupFiles: ['<rootDir>/test/support/jestEnv.ts'] };

module.exports = {
  // One DynamoDB Local (AWS's own, on Java) for the whole run; each test file uses its own table prefix.
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  transform,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.unit.test.ts'] },
    { ...common, displayName: 'int', testMatch: ['<rootDir>/test/**/*.int.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/support/jestTimeout.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/support/jestTimeout.ts'] },
  ],
};
