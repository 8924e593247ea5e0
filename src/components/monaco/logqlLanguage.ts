/**
 * LogQL for Monaco: a Monarch tokenizer (selectors, operators, parsers, functions, durations,
 * strings, variables) and the editing rules (brackets, auto-closing quotes).
 */
import type { Monaco, monacoTypes } from '@grafana/ui';

import {
  FILTER_FUNCTIONS,
  FORMATTERS,
  KEYWORDS,
  names,
  OTHER_FUNCTIONS,
  PARSERS,
  RANGE_FUNCTIONS,
  VECTOR_AGGREGATIONS,
} from '../../logql/syntax';

/** Our own id: Grafana's Loki datasource registers `logql` with its own tokenizer. */
export const LOGQL_LANGUAGE_ID = 'logsift-logql';

const DURATION = /\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y)(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))*/;
const BYTES = /\d+(?:\.\d+)?(?:[KMGTPE]i?B|B)\b/;
const VARIABLE = /\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]/;

export const logqlMonarch: monacoTypes.languages.IMonarchLanguage = {
  defaultToken: '',
  tokenPostfix: '.logql',
  ignoreCase: false,

  parsers: names(PARSERS),
  formatters: names(FORMATTERS),
  functions: [...names(RANGE_FUNCTIONS), ...names(VECTOR_AGGREGATIONS), ...names(OTHER_FUNCTIONS), ...FILTER_FUNCTIONS],
  keywords: KEYWORDS,

  escapes: /\\(?:[abfnrtv\\"']|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{3})/,

  tokenizer: {
    root: [
      { include: '@whitespace' },
      [/\{/, { token: 'delimiter.curly', next: '@selector' }],
      [/\[/, { token: 'delimiter.square', next: '@range' }],
      [
        /[A-Za-z_]\w*/,
        {
          cases: {
            '@parsers': 'keyword.parser',
            '@formatters': 'keyword.formatter',
            '@functions': 'predefined.function',
            '@keywords': 'keyword',
            '@default': 'identifier',
          },
        },
      ],
      [VARIABLE, 'variable'],
      [DURATION, 'number.duration'],
      [BYTES, 'number.bytes'],
      [/\d*\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?/, 'number'],
      { include: '@strings' },
      // Line filters first, so `|=` is not a pipe followed by `=`.
      [/\|=|\|~|\|>|!=|!~|!>/, 'operator.filter'],
      [/\|/, 'delimiter.pipe'],
      [/==|>=|<=|=~|[=<>+\-*/%^]/, 'operator'],
      [/[()]/, '@brackets'],
      [/,/, 'delimiter'],
    ],

    selector: [
      { include: '@whitespace' },
      [/[A-Za-z_]\w*/, 'attribute.name'],
      [/=~|!~|!=|=/, 'operator'],
      [VARIABLE, 'variable'],
      { include: '@strings' },
      [/,/, 'delimiter'],
      [/\}/, { token: 'delimiter.curly', next: '@pop' }],
    ],

    range: [
      { include: '@whitespace' },
      [VARIABLE, 'variable'],
      [DURATION, 'number.duration'],
      [/:/, 'delimiter'],
      [/\]/, { token: 'delimiter.square', next: '@pop' }],
    ],

    strings: [
      [/"/, { token: 'string.quote', next: '@string' }],
      [/`/, { token: 'string.quote', next: '@rawstring' }],
    ],

    string: [
      [/[^\\"$]+/, 'string'],
      [VARIABLE, 'variable'],
      [/\$/, 'string'],
      [/@escapes/, 'string.escape'],
      [/\\./, 'string.escape.invalid'],
      [/"/, { token: 'string.quote', next: '@pop' }],
    ],

    rawstring: [
      [/[^`]+/, 'string'],
      [/`/, { token: 'string.quote', next: '@pop' }],
    ],

    whitespace: [
      [/\s+/, 'white'],
      [/#.*$/, 'comment'],
    ],
  },
};

export const logqlConfiguration: monacoTypes.languages.LanguageConfiguration = {
  comments: { lineComment: '#' },
  brackets: [
    ['{', '}'],
    ['[', ']'],
    ['(', ')'],
  ],
  autoClosingPairs: [
    { open: '{', close: '}' },
    { open: '[', close: ']' },
    { open: '(', close: ')' },
    { open: '"', close: '"', notIn: ['string'] },
    { open: '`', close: '`', notIn: ['string'] },
  ],
  surroundingPairs: [
    { open: '{', close: '}' },
    { open: '[', close: ']' },
    { open: '(', close: ')' },
    { open: '"', close: '"' },
    { open: '`', close: '`' },
  ],
};

const registered = new WeakSet<object>();

/** Registers the language once per Monaco instance. */
export function registerLogQL(monaco: Monaco): void {
  if (registered.has(monaco.languages)) {
    return;
  }
  registered.add(monaco.languages);
  monaco.languages.register({ id: LOGQL_LANGUAGE_ID });
  monaco.languages.setMonarchTokensProvider(LOGQL_LANGUAGE_ID, logqlMonarch);
  monaco.languages.setLanguageConfiguration(LOGQL_LANGUAGE_ID, logqlConfiguration);
}
