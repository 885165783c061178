// One linter (ESLint + typescript-eslint); Prettier owns formatting.
// The import-direction rules hold the layering of ARCHITECTURE.md:
// core <- store <- queue <- delivery; api and cli on top; only the entry point wires roles.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((group) => ({ group: [group], message: why })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'bench/results/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'off',
    },
  },
  layer(
    ['src/core/**'],
    ['../*', '!./*'],
    'core is pure domain code and imports nothing of ours outside core.',
  ),
  layer(
    ['src/store/**'],
    ['**/queue/**', '**/delivery/**', '**/api/**', '**/cli/**', '**/config/**'],
    'store sits just above core.',
  ),
  layer(
    ['src/queue/**'],
    ['**/delivery/**', '**/api/**', '**/cli/**'],
    'queue sits below delivery, api and cli.',
  ),
  layer(['src/delivery/**'], ['**/api/**', '**/cli/**'], 'delivery sits below api and cli.'),
  layer(['src/api/**'], ['**/cli/**'], 'api does not depend on the cli.'),
);
