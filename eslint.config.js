import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: [...resolveIgnoresFromGitignore(), 'dist/**', 'coverage/**', '.tap/**']
  }),
  {
    rules: {
      // `void promise;` marks a deliberately unawaited promise (its errors are handled inside).
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // The chat page is plain browser JavaScript.
    files: ['public/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        localStorage: 'readonly',
        EventSource: 'readonly',
        fetch: 'readonly',
        requestAnimationFrame: 'readonly',
        performance: 'readonly',
        navigator: 'readonly',
        AbortController: 'readonly',
        TextDecoder: 'readonly',
        URL: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        location: 'readonly',
        crypto: 'readonly',
        HTMLElement: 'readonly',
        HTMLButtonElement: 'readonly',
        Element: 'readonly',
        Node: 'readonly',
        CSS: 'readonly',
        Event: 'readonly',
        Headers: 'readonly'
      }
    }
  }
]
