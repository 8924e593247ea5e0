/**
 * Rewrites of LogQL text that keep the rest of the query as the user wrote it: adding stream
 * matchers (ad-hoc filters), label filters and line filters (log details), and finding or
 * removing a label filter (filter toggles). Every log query inside a metric query is changed.
 */
import { escapeRegex, isValidLabelName, quote } from './escape';
import { findClosing, scan, significant, Token } from './scanner';

export interface LogQuerySegment {
  /** Offset of `{`. */
  selectorStart: number;
  /** Offset of the closing `}`. */
  selectorClose: number;
  /** Offset just after the last line filter that directly follows the selector (or after `}`). */
  lineFiltersEnd: number;
  /** Offset just after the last pipeline stage. */
  pipelineEnd: number;
}

const LINE_FILTER_OPS = ['|=', '!=', '|~', '!~', '|>', '!>'];

/** Every `{selector} pipeline` in the query, in text order. */
export function findLogQueries(expr: string): LogQuerySegment[] {
  const tokens = significant(scan(expr));
  const out: LogQuerySegment[] = [];
  let i = 0;
  while (i < tokens.length) {
    if (tokens[i].kind !== 'lbrace') {
      i++;
      continue;
    }
    const close = findClosing(tokens, i);
    if (close < 0) {
      break;
    }
    let lineFiltersEnd = tokens[close].end;
    let pipelineEnd = tokens[close].end;
    let inLineFilters = true;
    let depth = 0;
    let j = close + 1;
    for (; j < tokens.length; j++) {
      const t = tokens[j];
      if (t.kind === 'lparen') {
        depth++;
      } else if (t.kind === 'rparen') {
        if (depth === 0) {
          break;
        }
        depth--;
      } else if (depth === 0 && (t.kind === 'lbracket' || t.kind === 'lbrace')) {
        break;
      }
      if (inLineFilters) {
        const next = tokens[j + 1];
        const isFilter =
          (t.kind === 'op' && LINE_FILTER_OPS.includes(t.text)) || (t.kind === 'ident' && t.text === 'or');
        if (isFilter && next?.kind === 'string') {
          lineFiltersEnd = next.end;
        } else if (!(t.kind === 'string' && isFilterOperand(tokens, j))) {
          inLineFilters = false;
        }
      }
      pipelineEnd = t.end;
    }
    out.push({ selectorStart: tokens[i].start, selectorClose: tokens[close].start, lineFiltersEnd, pipelineEnd });
    i = j;
  }
  return out;
}

function isFilterOperand(tokens: Token[], j: number): boolean {
  const prev = tokens[j - 1];
  return (prev?.kind === 'op' && LINE_FILTER_OPS.includes(prev.text)) || (prev?.kind === 'ident' && prev.text === 'or');
}

function insertAt(expr: string, inserts: Array<{ at: number; text: string }>): string {
  // From the end, so earlier offsets stay valid.
  const sorted = [...inserts].sort((a, b) => b.at - a.at);
  let out = expr;
  for (const ins of sorted) {
    out = out.slice(0, ins.at) + ins.text + out.slice(ins.at);
  }
  return out;
}

export type LabelFilterOperator = '=' | '!=' | '=~' | '!~' | '>' | '>=' | '<' | '<=';

/** Appends `| key op "value"` to every log query; parsed labels and stream labels alike can be filtered this way. */
export function addLabelFilter(expr: string, key: string, value: string, op: LabelFilterOperator = '='): string {
  if (!isValidLabelName(key)) {
    return expr;
  }
  const text = ` | ${key}${op}${labelFilterValue(op, value)}`;
  return insertAt(
    expr,
    findLogQueries(expr).map((s) => ({ at: s.pipelineEnd, text }))
  );
}

function labelFilterValue(op: LabelFilterOperator, value: string): string {
  if (['>', '>=', '<', '<='].includes(op) && /^-?[0-9][0-9A-Za-zµ.]*$/.test(value)) {
    return value;
  }
  return quote(value);
}

/** Adds a line filter after the line filters that follow each selector (before any parser, where it is cheapest). */
export function addLineFilter(expr: string, value: string, op: '|=' | '!=' | '|~' | '!~' = '|='): string {
  const text = ` ${op} ${quote(value)}`;
  return insertAt(
    expr,
    findLogQueries(expr).map((s) => ({ at: s.lineFiltersEnd, text }))
  );
}

interface FoundFilter {
  start: number;
  end: number;
}

function findLabelFilters(expr: string, key: string, value: string, op: string): FoundFilter[] {
  const all = scan(expr);
  const tokens = significant(all);
  const found: FoundFilter[] = [];
  for (let i = 0; i + 3 < tokens.length; i++) {
    const [pipe, k, o, v] = tokens.slice(i, i + 4);
    if (
      pipe.kind === 'pipe' &&
      k.kind === 'ident' &&
      k.text === key &&
      o.kind === 'op' &&
      o.text === op &&
      ((v.kind === 'string' && v.closed && v.value === value) || (v.kind !== 'string' && v.text === value))
    ) {
      // Take the whitespace before the pipe with it, so removal leaves no double space.
      const spaceBefore = all.find((t) => t.end === pipe.start && t.kind === 'space');
      found.push({ start: spaceBefore ? spaceBefore.start : pipe.start, end: v.end });
    }
  }
  return found;
}

export function hasLabelFilter(expr: string, key: string, value: string, op: LabelFilterOperator = '='): boolean {
  return findLabelFilters(expr, key, value, op).length > 0;
}

export function removeLabelFilter(expr: string, key: string, value: string, op: LabelFilterOperator = '='): string {
  const found = findLabelFilters(expr, key, value, op);
  let out = expr;
  for (const f of found.reverse()) {
    out = out.slice(0, f.start) + out.slice(f.end);
  }
  return out;
}

/**
 * Filter toggles from log details: filtering for a value that is already filtered for removes
 * it; the opposite filter is replaced.
 */
export function toggleLabelFilter(expr: string, key: string, value: string, want: '=' | '!='): string {
  const opposite = want === '=' ? '!=' : '=';
  if (hasLabelFilter(expr, key, value, want)) {
    return removeLabelFilter(expr, key, value, want);
  }
  const without = removeLabelFilter(expr, key, value, opposite);
  return addLabelFilter(without, key, value, want);
}

export interface AdHocFilterLike {
  key: string;
  operator: string;
  value: string;
  values?: string[];
}

/**
 * Applies dashboard ad-hoc filters: equality and regex operators become stream matchers in every
 * selector; comparisons become label filters; "one of" operators become a regex of literal values.
 */
export function applyAdHocFilters(expr: string, filters: AdHocFilterLike[] | undefined): string {
  if (!filters || filters.length === 0 || expr.trim() === '') {
    return expr;
  }
  let out = expr;
  for (const f of filters) {
    if (!isValidLabelName(f.key)) {
      continue;
    }
    switch (f.operator) {
      case '=':
      case '!=':
      case '=~':
      case '!~':
        out = addMatcher(out, f.key, f.operator, f.value);
        break;
      case '=|':
      case '!=|': {
        const values = f.values && f.values.length > 0 ? f.values : [f.value];
        out = addMatcher(out, f.key, f.operator === '=|' ? '=~' : '!~', values.map(escapeRegex).join('|'));
        break;
      }
      case '<':
      case '>':
      case '<=':
      case '>=':
        out = addLabelFilter(out, f.key, f.value, f.operator);
        break;
    }
  }
  return out;
}

/** Adds `key op "value"` to every selector that does not already have exactly that matcher. */
export function addMatcher(expr: string, key: string, op: '=' | '!=' | '=~' | '!~', value: string): string {
  const tokens = significant(scan(expr));
  const inserts: Array<{ at: number; text: string }> = [];
  for (const s of findLogQueries(expr)) {
    const inner = tokens.filter((t) => t.start > s.selectorStart && t.start < s.selectorClose);
    const exists = inner.some(
      (t, i) =>
        t.kind === 'ident' &&
        t.text === key &&
        inner[i + 1]?.text === op &&
        inner[i + 2]?.kind === 'string' &&
        inner[i + 2]?.value === value
    );
    if (exists) {
      continue;
    }
    const matcher = `${key}${op}${quote(value)}`;
    inserts.push({ at: s.selectorClose, text: inner.length > 0 ? `, ${matcher}` : matcher });
  }
  return insertAt(expr, inserts);
}

interface FoundMatcher {
  /** The matcher's text, key to value. */
  start: number;
  end: number;
  /** The comma and spaces that go with it when it is removed. */
  cutStart: number;
  cutEnd: number;
  /** How many matchers its selector has. */
  siblings: number;
}

function findMatchers(expr: string, key: string, op: string, value: string): FoundMatcher[] {
  const all = scan(expr);
  const tokens = significant(all);
  const found: FoundMatcher[] = [];
  for (const s of findLogQueries(expr)) {
    const inner = tokens.filter((t) => t.start > s.selectorStart && t.start < s.selectorClose);
    const siblings = inner.filter((t, i) => t.kind === 'ident' && inner[i + 1]?.kind === 'op').length;
    for (let i = 0; i + 2 < inner.length; i++) {
      const [k, o, v] = [inner[i], inner[i + 1], inner[i + 2]];
      if (k.kind !== 'ident' || k.text !== key || o.text !== op || v.kind !== 'string' || v.value !== value) {
        continue;
      }
      // Take the comma after it, or else the one before it, so the selector stays well formed.
      const after = inner[i + 3];
      const before = inner[i - 1];
      let cutStart = k.start;
      let cutEnd = v.end;
      if (after?.kind === 'comma') {
        const next = inner[i + 4];
        cutEnd = next && next.start < s.selectorClose ? next.start : after.end;
      } else if (before?.kind === 'comma') {
        cutStart = before.start;
      }
      found.push({ start: k.start, end: v.end, cutStart, cutEnd, siblings });
    }
  }
  return found;
}

/** True when some stream selector of expr has exactly `key op "value"`. */
export function hasMatcher(expr: string, key: string, op: '=' | '!=', value: string): boolean {
  return findMatchers(expr, key, op, value).length > 0;
}

/**
 * Removes `key op "value"` from every stream selector, except where it is the selector's only
 * matcher: LogQL has no empty selector.
 */
export function removeMatcher(expr: string, key: string, op: '=' | '!=', value: string): string {
  const found = findMatchers(expr, key, op, value).filter((m) => m.siblings > 1);
  let out = expr;
  for (const m of found.reverse()) {
    out = out.slice(0, m.cutStart) + out.slice(m.cutEnd);
  }
  return out;
}

/**
 * The filter toggle for a stream label: filtering for a value already selected removes it; the
 * opposite matcher is replaced. Selecting streams is cheaper than filtering lines after reading them.
 */
export function toggleMatcher(expr: string, key: string, value: string, want: '=' | '!='): string {
  if (hasMatcher(expr, key, want, value)) {
    return removeMatcher(expr, key, want, value);
  }
  const opposite = want === '=' ? '!=' : '=';
  return addMatcher(removeMatcher(expr, key, opposite, value), key, want, value);
}

/** The first log query of expr, selector and pipeline, as text: the lines behind a metric query. */
export function firstLogQuery(expr: string): string | undefined {
  const [first] = findLogQueries(expr);
  return first ? expr.slice(first.selectorStart, first.pipelineEnd) : undefined;
}

/** True when the query is a metric query rather than a log query. */
export function isMetricQuery(expr: string): boolean {
  const tokens = significant(scan(expr));
  const first = tokens[0];
  return first !== undefined && first.kind !== 'lbrace';
}
