/**
 * A forgiving LogQL scanner. The editor works on half-typed queries, so it never fails: an
 * unterminated string runs to the end and an unknown character becomes an 'other' token.
 * The server's parser is the authority on validity; this only finds structure for
 * completion, the builder and query rewriting.
 */

export type TokenKind =
  | 'lbrace'
  | 'rbrace'
  | 'lparen'
  | 'rparen'
  | 'lbracket'
  | 'rbracket'
  | 'comma'
  | 'pipe'
  | 'op'
  | 'string'
  | 'ident'
  | 'number'
  | 'duration'
  | 'variable'
  | 'space'
  | 'comment'
  | 'other';

export interface Token {
  kind: TokenKind;
  /** The source text of the token. */
  text: string;
  start: number;
  end: number;
  /** Strings only: the unquoted, unescaped value. */
  value?: string;
  /** Strings only: false when the closing quote is missing. */
  closed?: boolean;
}

// Longest first, so that `|=` is not read as `|` then `=`.
const OPERATORS = [
  '|=',
  '|~',
  '|>',
  '!=',
  '!~',
  '!>',
  '=~',
  '==',
  '>=',
  '<=',
  '=',
  '>',
  '<',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
];

const DURATION_UNITS = ['ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd', 'w', 'y'];

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

export function scan(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, start: number, end: number, extra?: Partial<Token>) => {
    tokens.push({ kind, text: text.slice(start, end), start, end, ...extra });
  };

  while (i < text.length) {
    const c = text[i];
    const start = i;

    if (/\s/.test(c)) {
      while (i < text.length && /\s/.test(text[i])) {
        i++;
      }
      push('space', start, i);
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') {
        i++;
      }
      push('comment', start, i);
      continue;
    }
    if (c === '"' || c === '`') {
      const { end, value, closed } = readString(text, i);
      i = end;
      push('string', start, end, { value, closed });
      continue;
    }
    const single: Record<string, TokenKind> = {
      '{': 'lbrace',
      '}': 'rbrace',
      '(': 'lparen',
      ')': 'rparen',
      '[': 'lbracket',
      ']': 'rbracket',
      ',': 'comma',
    };
    if (single[c]) {
      i++;
      push(single[c], start, i);
      continue;
    }
    if (c === '$') {
      i = readVariable(text, i);
      push(i > start + 1 ? 'variable' : 'other', start, i);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const { end, kind } = readNumber(text, i);
      i = end;
      push(kind, start, end);
      continue;
    }
    if (IDENT_START.test(c)) {
      while (i < text.length && IDENT_PART.test(text[i])) {
        i++;
      }
      push('ident', start, i);
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) {
      i += op.length;
      push('op', start, i);
      continue;
    }
    if (c === '|') {
      i++;
      push('pipe', start, i);
      continue;
    }
    i++;
    push('other', start, i);
  }
  return tokens;
}

function readString(text: string, start: number): { end: number; value: string; closed: boolean } {
  const quote = text[start];
  let i = start + 1;
  let value = '';
  while (i < text.length) {
    const c = text[i];
    if (c === quote) {
      return { end: i + 1, value, closed: true };
    }
    if (quote === '"' && c === '\\' && i + 1 < text.length) {
      value += unescapeChar(text[i + 1]);
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  return { end: i, value, closed: false };
}

function unescapeChar(c: string): string {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    default:
      return c;
  }
}

function readVariable(text: string, start: number): number {
  let i = start + 1;
  if (text[i] === '{') {
    const close = text.indexOf('}', i);
    return close < 0 ? text.length : close + 1;
  }
  while (i < text.length && IDENT_PART.test(text[i])) {
    i++;
  }
  return i;
}

function readNumber(text: string, start: number): { end: number; kind: TokenKind } {
  let i = start;
  while (i < text.length && /[0-9.eE]/.test(text[i])) {
    // An exponent sign belongs to the number only right after e/E.
    i++;
    if ((text[i - 1] === 'e' || text[i - 1] === 'E') && (text[i] === '+' || text[i] === '-')) {
      i++;
    }
  }
  // A unit makes it a duration (5m, 1h30m) or a byte size (10KB); both are single tokens.
  let sawUnit = false;
  let isDuration = true;
  while (i < text.length && /[A-Za-zµ]/.test(text[i])) {
    let j = i;
    while (j < text.length && /[A-Za-zµ]/.test(text[j])) {
      j++;
    }
    const unit = text.slice(i, j);
    if (!DURATION_UNITS.includes(unit)) {
      isDuration = false;
    }
    sawUnit = true;
    i = j;
    while (i < text.length && /[0-9.]/.test(text[i])) {
      i++;
    }
  }
  return { end: i, kind: sawUnit && isDuration ? 'duration' : 'number' };
}

/** The tokens that carry meaning: no spaces or comments. */
export function significant(tokens: Token[]): Token[] {
  return tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
}

/** Index of the token closing the bracket opened at `open`, or -1 when it is never closed. */
export function findClosing(tokens: Token[], open: number): number {
  const pairs: Partial<Record<TokenKind, TokenKind>> = { lbrace: 'rbrace', lparen: 'rparen', lbracket: 'rbracket' };
  const openKind = tokens[open].kind;
  const closeKind = pairs[openKind];
  if (!closeKind) {
    return -1;
  }
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i].kind === openKind) {
      depth++;
    } else if (tokens[i].kind === closeKind) {
      depth--;
      if (depth === 0) {
        return i;
      }
    }
  }
  return -1;
}
