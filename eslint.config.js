// @ts-check
/**
 * Lint (`npm run lint`, with .dependency-cruiser.cjs for the layering): typescript-eslint's
 * recommended set (syntax only; it costs this code base two edits) plus a few rules with type
 * information, each guarding something STYLE.md asks for:
 *   - no floating promises, `void promise` included: a dropped rejection is a silent failure;
 *     handle it (a `.catch` that logs) or await it.
 *   - type-only imports say so (`import type`).
 *   - no `any`.
 *   - only cli/ reads process.env; everything below gets typed config.
 *   - no `.only` / `.skip` in tests (test/, and the `*.test.ts` beside web/'s code): a focused or
 *     disabled test must not reach main.
 */
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import vitest from '@vitest/eslint-plugin';

export default defineConfig(
  { ignores: ['dist/**', 'proto/gen/**', 'node_modules/**', 'coverage/**'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false, ignoreIIFE: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      // A variable a closure reads before its one assignment (agent/runner.ts's pid) is not a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['{agent,coordinator,core,proto,server,web}/**/*.ts', '{agent,coordinator,core,proto,server,web}/**/*.tsx'],
    // Tests beside the code are not production: like test/, they may read the environment.
    ignores: ['**/*.test.ts', '**/*.test.tsx'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only cli/ reads the environment: take the value as typed config (cli/settings.ts).' }],
    },
  },
  {
    files: ['test/**/*.ts', '**/*.test.ts', '**/*.test.tsx'],
    plugins: { vitest },
    rules: {
      'vitest/no-focused-tests': 'error',
      'vitest/no-disabled-tests': 'error',
    },
  },
);
