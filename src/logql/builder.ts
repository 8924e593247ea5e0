/**
 * The visual builder's model and its two directions: state to LogQL text (always), and LogQL
 * text back to state (for the queries the builder can show; anything else returns undefined
 * and stays in code mode).
 */
import { quote } from './escape';
import { findClosing, scan, significant, Token } from './scanner';
import { MatcherOp } from './syntax';

export type LineFilterOp = '|=' | '!=' | '|~' | '!~';
export type LabelFilterOp = '=' | '!=' | '=~' | '!~' | '>' | '>=' | '<' | '<=';
export type ParserType = 'json' | 'logfmt' | 'pattern' | 'regexp';

export const RANGE_FUNCTIONS_WITHOUT_UNWRAP = [
  'count_over_time',
  'rate',
  'bytes_over_time',
  'bytes_rate',
  'absent_over_time',
] as const;
export const RANGE_FUNCTIONS_WITH_UNWRAP = [
  'sum_over_time',
  'avg_over_time',
  'min_over_time',
  'max_over_time',
  'first_over_time',
  'last_over_time',
  'stddev_over_time',
  'stdvar_over_time',
] as const;
export type RangeFunction =
  (typeof RANGE_FUNCTIONS_WITHOUT_UNWRAP)[number] | (typeof RANGE_FUNCTIONS_WITH_UNWRAP)[number];
export const VECTOR_AGGREGATIONS = [
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
] as const;
export type VectorAggregation = (typeof VECTOR_AGGREGATIONS)[number];

export interface LabelMatcherState {
  label: string;
  op: MatcherOp;
  value: string;
}

export interface LineFilterState {
  op: LineFilterOp;
  value: string;
}

export interface LabelFilterState {
  label: string;
  op: LabelFilterOp;
  value: string;
}

export interface MetricState {
  rangeFunction: RangeFunction;
  /** A duration or an interval variable such as $__auto. */
  range: string;
  /** Required by the functions in RANGE_FUNCTIONS_WITH_UNWRAP. */
  unwrap?: string;
  aggregation?: VectorAggregation;
  /** `by (...)` labels of the aggregation. */
  by: string[];
  /** k of topk and bottomk. */
  param?: number;
}

export interface BuilderState {
  labels: LabelMatcherState[];
  lineFilters: LineFilterState[];
  parser?: { type: ParserType; expression?: string };
  labelFilters: LabelFilterState[];
  metric?: MetricState;
}

export const emptyBuilderState = (): BuilderState => ({ labels: [], lineFilters: [], labelFilters: [] });

const COMPARISON_OPS = ['>', '>=', '<', '<='];

export function needsUnwrap(fn: RangeFunction): boolean {
  return (RANGE_FUNCTIONS_WITH_UNWRAP as readonly string[]).includes(fn);
}

/**
 * Renders the state as LogQL. Rows the user has not finished (no label, no value) are left out,
 * so the text is always what would run. Without a complete label matcher there is no valid
 * selector, and the result is ''.
 */
export function renderQuery(state: BuilderState): string {
  const matchers = state.labels.filter((m) => m.label && m.value !== '');
  if (matchers.length === 0) {
    return '';
  }
  let logQuery = `{${matchers.map((m) => `${m.label}${m.op}${quote(m.value)}`).join(', ')}}`;
  for (const f of state.lineFilters) {
    if (f.value !== '') {
      logQuery += ` ${f.op} ${quote(f.value)}`;
    }
  }
  if (state.parser) {
    logQuery += ` | ${state.parser.type}`;
    if ((state.parser.type === 'pattern' || state.parser.type === 'regexp') && state.parser.expression) {
      logQuery += ` ${quote(state.parser.expression)}`;
    }
  }
  for (const f of state.labelFilters) {
    if (f.label && f.value !== '') {
      logQuery += ` | ${f.label}${f.op}${renderLabelFilterValue(f)}`;
    }
  }
  const metric = state.metric;
  if (!metric) {
    return logQuery;
  }
  if (needsUnwrap(metric.rangeFunction) && metric.unwrap) {
    logQuery += ` | unwrap ${metric.unwrap}`;
  }
  let expr = `${metric.rangeFunction}(${logQuery} [${metric.range || '$__auto'}])`;
  if (metric.aggregation) {
    const by = metric.by.length > 0 ? ` by (${metric.by.join(', ')}) ` : '';
    const param = metric.aggregation === 'topk' || metric.aggregation === 'bottomk' ? `${metric.param ?? 10}, ` : '';
    expr = `${metric.aggregation}${by}(${param}${expr})`;
  }
  return expr;
}

function renderLabelFilterValue(f: LabelFilterState): string {
  // Comparisons are numeric (or duration and byte sizes), written bare; the rest compare strings.
  if (COMPARISON_OPS.includes(f.op) && /^-?[0-9][0-9A-Za-zµ.]*$/.test(f.value)) {
    return f.value;
  }
  return quote(f.value);
}

/** Parses a query the builder can show. Returns undefined for anything else; '' is the empty state. */
export function parseQuery(expr: string): BuilderState | undefined {
  if (expr.trim() === '') {
    return emptyBuilderState();
  }
  const tokens = significant(scan(expr));
  if (
    tokens.some(
      (t) =>
        t.kind === 'other' ||
        (t.kind === 'variable' && !isRangeVariable(tokens, t)) ||
        (t.kind === 'string' && !t.closed)
    )
  ) {
    return undefined;
  }
  const p = new Parser(tokens);
  try {
    const state = p.parseExpression();
    if (!p.done()) {
      return undefined;
    }
    return state;
  } catch {
    return undefined;
  }
}

// Variables are fine where the builder shows them verbatim: the range of a metric query.
function isRangeVariable(tokens: Token[], t: Token): boolean {
  const i = tokens.indexOf(t);
  return tokens[i - 1]?.kind === 'lbracket' && tokens[i + 1]?.kind === 'rbracket';
}

class NotBuildable extends Error {}

class Parser {
  private i = 0;
  constructor(private tokens: Token[]) {}

  done(): boolean {
    return this.i >= this.tokens.length;
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }

  private next(): Token {
    const t = this.tokens[this.i++];
    if (!t) {
      throw new NotBuildable('unexpected end');
    }
    return t;
  }

  private expect(kind: Token['kind'], text?: string): Token {
    const t = this.next();
    if (t.kind !== kind || (text !== undefined && t.text !== text)) {
      throw new NotBuildable(`expected ${text ?? kind}`);
    }
    return t;
  }

  parseExpression(): BuilderState {
    const t = this.peek();
    if (t?.kind === 'lbrace') {
      return this.parseLogQuery();
    }
    if (t?.kind === 'ident' && (VECTOR_AGGREGATIONS as readonly string[]).includes(t.text)) {
      return this.parseAggregation();
    }
    if (t?.kind === 'ident') {
      return this.parseRangeAggregation();
    }
    throw new NotBuildable('not a query');
  }

  private parseAggregation(): BuilderState {
    const op = this.next().text as VectorAggregation;
    let by: string[] = [];
    if (this.peek()?.kind === 'ident' && this.peek()?.text === 'by') {
      this.next();
      by = this.parseLabelList();
    }
    this.expect('lparen');
    let param: number | undefined;
    if (op === 'topk' || op === 'bottomk') {
      param = Number(this.expect('number').text);
      this.expect('comma');
    }
    const inner = this.parseRangeAggregation();
    this.expect('rparen');
    // The grouping may also follow the parentheses: sum(...) by (a).
    if (by.length === 0 && this.peek()?.kind === 'ident' && this.peek()?.text === 'by') {
      this.next();
      by = this.parseLabelList();
    }
    inner.metric = { ...inner.metric!, aggregation: op, by, param };
    return inner;
  }

  private parseLabelList(): string[] {
    this.expect('lparen');
    const labels: string[] = [];
    while (this.peek()?.kind !== 'rparen') {
      labels.push(this.expect('ident').text);
      if (this.peek()?.kind === 'comma') {
        this.next();
      }
    }
    this.expect('rparen');
    return labels;
  }

  private parseRangeAggregation(): BuilderState {
    const fn = this.expect('ident').text;
    const known = [...RANGE_FUNCTIONS_WITHOUT_UNWRAP, ...RANGE_FUNCTIONS_WITH_UNWRAP] as readonly string[];
    if (!known.includes(fn)) {
      throw new NotBuildable(`unknown function ${fn}`);
    }
    const open = this.i;
    this.expect('lparen');
    const close = findClosing(this.tokens, open);
    if (close < 0) {
      throw new NotBuildable('unclosed');
    }
    // The range is the last bracket pair before the closing paren.
    const rbracket = close - 1;
    const lbracket = close - 3;
    if (this.tokens[rbracket]?.kind !== 'rbracket' || this.tokens[lbracket]?.kind !== 'lbracket') {
      throw new NotBuildable('no range');
    }
    const rangeTok = this.tokens[lbracket + 1];
    if (rangeTok.kind !== 'duration' && rangeTok.kind !== 'variable') {
      throw new NotBuildable('bad range');
    }
    const inner = new Parser(this.tokens.slice(this.i, lbracket));
    const state = inner.parseLogQuery(true);
    if (!inner.done()) {
      throw new NotBuildable('trailing tokens in range');
    }
    this.i = close + 1;
    const unwrap = state.unwrapLabel;
    delete state.unwrapLabel;
    if (needsUnwrap(fn as RangeFunction) !== (unwrap !== undefined)) {
      throw new NotBuildable('unwrap mismatch');
    }
    state.metric = { rangeFunction: fn as RangeFunction, range: rangeTok.text, unwrap, by: [] };
    return state;
  }

  parseLogQuery(allowUnwrap = false): BuilderState & { unwrapLabel?: string } {
    const state: BuilderState & { unwrapLabel?: string } = emptyBuilderState();
    this.expect('lbrace');
    while (this.peek()?.kind !== 'rbrace') {
      const label = this.expect('ident').text;
      const op = this.expect('op').text;
      if (!['=', '!=', '=~', '!~'].includes(op)) {
        throw new NotBuildable('bad matcher');
      }
      const value = this.expect('string').value ?? '';
      state.labels.push({ label, op: op as MatcherOp, value });
      if (this.peek()?.kind === 'comma') {
        this.next();
      }
    }
    this.expect('rbrace');

    // Stage order the builder renders: line filters, parser, label filters, unwrap.
    let phase = 0;
    while (!this.done()) {
      const t = this.peek()!;
      if (t.kind === 'op' && ['|=', '!=', '|~', '!~'].includes(t.text) && this.peek(1)?.kind === 'string') {
        if (phase > 0) {
          throw new NotBuildable('line filter after parser');
        }
        this.next();
        state.lineFilters.push({ op: t.text as LineFilterOp, value: this.next().value ?? '' });
        continue;
      }
      if (t.kind !== 'pipe') {
        throw new NotBuildable('unexpected token');
      }
      this.next();
      const stage = this.expect('ident');
      if (['json', 'logfmt', 'pattern', 'regexp'].includes(stage.text) && this.peek(0)?.kind !== 'op') {
        if (phase > 0) {
          throw new NotBuildable('second parser');
        }
        phase = 1;
        const type = stage.text as ParserType;
        let expression: string | undefined;
        if (type === 'pattern' || type === 'regexp') {
          expression = this.expect('string').value;
        }
        state.parser = { type, expression };
        continue;
      }
      if (stage.text === 'unwrap' && allowUnwrap) {
        state.unwrapLabel = this.expect('ident').text;
        phase = 3;
        continue;
      }
      if (phase > 2) {
        throw new NotBuildable('stage after unwrap');
      }
      phase = 2;
      const op = this.expect('op').text;
      if (!['=', '!=', '=~', '!~', '>', '>=', '<', '<='].includes(op)) {
        throw new NotBuildable('bad label filter');
      }
      const v = this.next();
      if (v.kind === 'string') {
        state.labelFilters.push({ label: stage.text, op: op as LabelFilterOp, value: v.value ?? '' });
      } else if ((v.kind === 'number' || v.kind === 'duration') && COMPARISON_OPS.includes(op)) {
        state.labelFilters.push({ label: stage.text, op: op as LabelFilterOp, value: v.text });
      } else {
        throw new NotBuildable('bad label filter value');
      }
    }
    return state;
  }
}
