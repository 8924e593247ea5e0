/**
 * What to suggest at a cursor in a LogQL query. Pure: the situation is found from the text
 * alone, and the items are built from whatever label data the caller supplies, so both
 * halves are testable without Monaco.
 */
import { escapeString, quote } from './escape';
import { scan, significant, Token } from './scanner';
import {
  FORMATTERS,
  LINE_FILTER_OPERATORS,
  PARSERS,
  RANGE_FUNCTIONS,
  RANGE_SUGGESTIONS,
  VECTOR_AGGREGATIONS,
  OTHER_FUNCTIONS,
  Word,
} from './syntax';

export interface Matcher {
  label: string;
  op: string;
  value: string;
}

export type CompletionSituation =
  | { type: 'LABEL_NAME'; otherMatchers: Matcher[] }
  | { type: 'LABEL_VALUE'; label: string; otherMatchers: Matcher[]; betweenQuotes: boolean }
  | { type: 'GROUPING'; selector: Matcher[] }
  | { type: 'RANGE' }
  | { type: 'PIPE_STAGE'; selector: Matcher[] }
  | { type: 'AFTER_PIPELINE'; selector: Matcher[] }
  | { type: 'EXPRESSION_START' }
  | { type: 'NONE' };

export interface CompletionContext {
  situation: CompletionSituation;
  /** Offset where the word being completed starts: the replaced range is [wordStart, cursor). */
  wordStart: number;
}

interface Frame {
  kind: 'top' | 'brace' | 'paren' | 'bracket';
  /** The identifier just before an opening paren: a function name, `by`, `without`. */
  fn?: string;
  /** Index in the significant tokens where the frame opened. */
  openIndex: number;
  /** A selector was closed directly inside this frame: what follows is its pipeline. */
  selector?: Matcher[];
}

const GROUPING_WORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'];

export function getCompletionContext(text: string, cursor: number): CompletionContext {
  const all = scan(text.slice(0, cursor));
  const tokens = significant(all);
  const last = tokens[tokens.length - 1];

  // Inside a string: only a label value in a selector is worth suggesting.
  if (last && last.kind === 'string' && !last.closed) {
    const frames = buildFrames(tokens.slice(0, -1));
    const top = frames[frames.length - 1];
    const op = tokens[tokens.length - 2];
    const label = tokens[tokens.length - 3];
    if (top.kind === 'brace' && op?.kind === 'op' && label?.kind === 'ident') {
      return {
        situation: {
          type: 'LABEL_VALUE',
          label: label.text,
          otherMatchers: matchersOf(tokens.slice(top.openIndex + 1, -3)),
          betweenQuotes: true,
        },
        wordStart: last.start + 1,
      };
    }
    return { situation: { type: 'NONE' }, wordStart: cursor };
  }

  // The word being typed (touching the cursor) is replaced, so the situation is decided by what precedes it.
  let wordStart = cursor;
  let before = tokens;
  const rawLast = all[all.length - 1];
  if (
    last &&
    rawLast === last &&
    (last.kind === 'ident' || last.kind === 'number' || last.kind === 'duration' || last.kind === 'variable')
  ) {
    wordStart = last.start;
    before = tokens.slice(0, -1);
  }
  const prev = before[before.length - 1];
  const frames = buildFrames(before);
  const top = frames[frames.length - 1];

  if (top.kind === 'brace') {
    const inner = before.slice(top.openIndex + 1);
    const otherMatchers = matchersOf(inner);
    if (prev.kind === 'lbrace' || prev.kind === 'comma') {
      return { situation: { type: 'LABEL_NAME', otherMatchers }, wordStart };
    }
    const label = before[before.length - 2];
    if (prev.kind === 'op' && label?.kind === 'ident') {
      return { situation: { type: 'LABEL_VALUE', label: label.text, otherMatchers, betweenQuotes: false }, wordStart };
    }
    return { situation: { type: 'NONE' }, wordStart };
  }

  if (top.kind === 'bracket') {
    return { situation: { type: 'RANGE' }, wordStart };
  }

  if (top.kind === 'paren' && top.fn && GROUPING_WORDS.includes(top.fn)) {
    return { situation: { type: 'GROUPING', selector: innermostSelector(frames) }, wordStart };
  }

  if (top.selector) {
    if (prev.kind === 'pipe') {
      return { situation: { type: 'PIPE_STAGE', selector: top.selector }, wordStart };
    }
    if (prev.kind === 'op' || (prev.kind === 'ident' && isStageExpectingArgument(prev.text))) {
      // Typing the argument of a line filter, a comparison or a stage: no useful suggestion.
      return { situation: { type: 'NONE' }, wordStart };
    }
    return { situation: { type: 'AFTER_PIPELINE', selector: top.selector }, wordStart };
  }

  if (!prev || prev.kind === 'lparen' || prev.kind === 'comma' || prev.kind === 'op') {
    return { situation: { type: 'EXPRESSION_START' }, wordStart };
  }
  return { situation: { type: 'NONE' }, wordStart };
}

function isStageExpectingArgument(word: string): boolean {
  return ['pattern', 'regexp', 'line_format', 'label_format', 'drop', 'keep', 'unwrap'].includes(word);
}

function buildFrames(tokens: Token[]): Frame[] {
  const frames: Frame[] = [{ kind: 'top', openIndex: -1 }];
  tokens.forEach((t, i) => {
    const top = frames[frames.length - 1];
    switch (t.kind) {
      case 'lbrace':
        frames.push({ kind: 'brace', openIndex: i });
        break;
      case 'lparen': {
        const before = tokens[i - 1];
        frames.push({ kind: 'paren', openIndex: i, fn: before?.kind === 'ident' ? before.text : undefined });
        break;
      }
      case 'lbracket':
        frames.push({ kind: 'bracket', openIndex: i });
        break;
      case 'rbrace':
        if (top.kind === 'brace' && frames.length > 1) {
          frames.pop();
          frames[frames.length - 1].selector = matchersOf(tokens.slice(top.openIndex + 1, i));
        }
        break;
      case 'rparen':
        if (top.kind === 'paren' && frames.length > 1) {
          frames.pop();
        }
        break;
      case 'rbracket':
        if (top.kind === 'bracket' && frames.length > 1) {
          frames.pop();
          // A range ends the log query it applies to.
          frames[frames.length - 1].selector = undefined;
        }
        break;
    }
  });
  return frames;
}

function innermostSelector(frames: Frame[]): Matcher[] {
  for (let i = frames.length - 1; i >= 0; i--) {
    if (frames[i].selector) {
      return frames[i].selector!;
    }
  }
  return [];
}

/** The complete `label op "value"` matchers among the tokens of a selector body. */
export function matchersOf(tokens: Token[]): Matcher[] {
  const out: Matcher[] = [];
  for (let i = 0; i + 2 < tokens.length; i++) {
    const [l, op, v] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    if (l.kind === 'ident' && op.kind === 'op' && v.kind === 'string' && v.closed) {
      out.push({ label: l.text, op: op.text, value: v.value ?? '' });
      i += 2;
    }
  }
  return out;
}

export function selectorText(matchers: Matcher[]): string {
  if (matchers.length === 0) {
    return '';
  }
  return `{${matchers.map((m) => `${m.label}${m.op}${quote(m.value)}`).join(', ')}}`;
}

export type CompletionKind =
  'label' | 'value' | 'function' | 'parser' | 'operator' | 'duration' | 'snippet' | 'variable' | 'keyword';

export interface CompletionItem {
  label: string;
  insertText: string;
  kind: CompletionKind;
  detail?: string;
  documentation?: string;
  /** insertText uses Monaco snippet syntax ($0, ${1:name}). */
  isSnippet?: boolean;
  /** Open the suggestions again after inserting (e.g. values after a label name). */
  retrigger?: boolean;
  /** Orders items; smaller first. */
  sortText?: string;
}

/** Where completion data comes from; the datasource implements it with its resources. */
export interface CompletionDataProvider {
  labelNames(selector: string): Promise<string[]>;
  labelValues(label: string, selector: string): Promise<string[]>;
  /** Template variable names without the `$`. */
  variables(): string[];
}

export async function getCompletionItems(
  situation: CompletionSituation,
  data: CompletionDataProvider
): Promise<CompletionItem[]> {
  switch (situation.type) {
    case 'LABEL_NAME': {
      const used = new Set(situation.otherMatchers.map((m) => m.label));
      const names = await data.labelNames(selectorText(situation.otherMatchers));
      return names
        .filter((n) => !used.has(n))
        .map((n) => ({ label: n, insertText: `${n}=`, kind: 'label' as const, retrigger: true }));
    }
    case 'LABEL_VALUE': {
      const others = situation.otherMatchers.filter((m) => m.label !== situation.label);
      const values = await data.labelValues(situation.label, selectorText(others));
      const items: CompletionItem[] = values.map((v) => ({
        label: v,
        insertText: situation.betweenQuotes ? escapeString(v) : quote(v),
        kind: 'value',
      }));
      return items.concat(variableItems(data, situation.betweenQuotes));
    }
    case 'GROUPING': {
      const names = await data.labelNames(selectorText(situation.selector));
      return names.map((n) => ({ label: n, insertText: n, kind: 'label' }));
    }
    case 'RANGE':
      return RANGE_SUGGESTIONS.map((d, i) => ({
        label: d,
        insertText: d,
        kind: 'duration',
        sortText: String(i).padStart(2, '0'),
      }));
    case 'PIPE_STAGE': {
      const stages = [...PARSERS, ...FORMATTERS].map((w) => ({
        label: w.name,
        insertText: stageSnippet(w.name),
        isSnippet: true,
        kind: (PARSERS.includes(w) ? 'parser' : 'function') as CompletionKind,
        documentation: w.doc,
        sortText: `0${w.name}`,
      }));
      // A label filter: any stream label, or one a parser extracted (unknown here, so typed by hand).
      const names = await data.labelNames(selectorText(situation.selector));
      const labels = names.map((n) => ({
        label: n,
        insertText: n,
        kind: 'label' as const,
        detail: 'label filter',
        sortText: `1${n}`,
      }));
      return [...stages, ...labels];
    }
    case 'AFTER_PIPELINE': {
      const filters = LINE_FILTER_OPERATORS.map((f, i) => ({
        label: `${f.op} ""`,
        insertText: `${f.op} "$0"`,
        isSnippet: true,
        kind: 'operator' as const,
        documentation: f.doc,
        sortText: `0${i}`,
      }));
      const stages = [...PARSERS, ...FORMATTERS].map((w) => ({
        label: `| ${w.name}`,
        insertText: `| ${stageSnippet(w.name)}`,
        isSnippet: true,
        kind: 'parser' as const,
        documentation: w.doc,
        sortText: `1${w.name}`,
      }));
      return [...filters, ...stages];
    }
    case 'EXPRESSION_START':
      return [
        {
          label: '{}',
          insertText: '{$0}',
          isSnippet: true,
          kind: 'snippet',
          documentation: 'A stream selector',
          retrigger: true,
          sortText: '0',
        },
        ...functionItems(RANGE_FUNCTIONS, (n) =>
          n === 'quantile_over_time'
            ? `${n}(\${1:0.99}, {$2} | unwrap \${3:label} [\${4:\\$__auto}])`
            : `${n}({$1}[\${2:\\$__auto}])`
        ),
        ...functionItems(VECTOR_AGGREGATIONS, (n) =>
          n === 'topk' || n === 'bottomk' || n === 'approx_topk' ? `${n}(\${1:5}, $0)` : `${n}($0)`
        ),
        ...functionItems(OTHER_FUNCTIONS, (n) => `${n}($0)`),
      ];
    case 'NONE':
      return [];
  }
}

function functionItems(words: Word[], snippet: (name: string) => string): CompletionItem[] {
  return words.map((w) => ({
    label: w.name,
    insertText: snippet(w.name),
    isSnippet: true,
    kind: 'function',
    documentation: w.doc,
    sortText: `1${w.name}`,
  }));
}

function stageSnippet(name: string): string {
  switch (name) {
    case 'pattern':
      return 'pattern "${1:<_> <message>}"';
    case 'regexp':
      return 'regexp "${1:(?P<name>\\\\\\\\w+)}"';
    case 'line_format':
      return 'line_format "${1:{{.message\\}\\}}"';
    case 'label_format':
      return 'label_format ${1:new}=${2:old}';
    case 'drop':
    case 'keep':
      return `${name} \${1:label}`;
    case 'unwrap':
      return 'unwrap ${1:label}';
    default:
      return name;
  }
}

function variableItems(data: CompletionDataProvider, betweenQuotes: boolean): CompletionItem[] {
  return data.variables().map((v) => ({
    label: `$${v}`,
    insertText: betweenQuotes ? `$${v}` : `"$${v}"`,
    kind: 'variable',
    detail: 'template variable',
    sortText: `~${v}`,
  }));
}
