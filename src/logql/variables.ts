/**
 * The template variable query language: `label_names()`, `label_names({selector})`,
 * `label_values(label)`, `label_values({selector} | pipeline, label)` and `workspaces()`.
 */

import { LogsiftVariableQuery } from '../types';

export type VariableQuery =
  | { kind: 'labelNames'; selector?: string }
  | { kind: 'labelValues'; label: string; selector?: string }
  | { kind: 'workspaces' };

const LABEL_NAMES = /^\s*label_names\(\s*(.*?)\s*\)\s*$/s;
const LABEL_VALUES = /^\s*label_values\(\s*(.*?)\s*\)\s*$/s;
const WORKSPACES = /^\s*workspaces\(\s*\)\s*$/;
const LABEL = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseVariableQuery(query: string): VariableQuery | undefined {
  if (WORKSPACES.test(query)) {
    return { kind: 'workspaces' };
  }
  let m = LABEL_NAMES.exec(query);
  if (m) {
    return m[1] ? { kind: 'labelNames', selector: m[1] } : { kind: 'labelNames' };
  }
  m = LABEL_VALUES.exec(query);
  if (m) {
    const args = m[1];
    // The label is the last argument; the selector before it may itself contain commas.
    const comma = args.lastIndexOf(',');
    const label = (comma < 0 ? args : args.slice(comma + 1)).trim();
    const selector = comma < 0 ? undefined : args.slice(0, comma).trim();
    if (!LABEL.test(label) || selector === '') {
      return undefined;
    }
    return selector ? { kind: 'labelValues', label, selector } : { kind: 'labelValues', label };
  }
  return undefined;
}

/** The variable editor's model of a parsed text query (saved dashboards may hold the text). */
export function toVariableModel(parsed: VariableQuery, refId = 'LogsiftVariableQuery'): LogsiftVariableQuery {
  switch (parsed.kind) {
    case 'labelNames':
      return { refId, type: 'labelNames', ...(parsed.selector ? { stream: parsed.selector } : {}) };
    case 'labelValues':
      return {
        refId,
        type: 'labelValues',
        label: parsed.label,
        ...(parsed.selector ? { stream: parsed.selector } : {}),
      };
    case 'workspaces':
      return { refId, type: 'workspaces' };
  }
}

/** The lookup a variable editor model asks for; undefined while it is incomplete (no label). */
export function fromVariableModel(q: LogsiftVariableQuery): VariableQuery | undefined {
  const selector = q.stream?.trim() || undefined;
  switch (q.type) {
    case 'labelNames':
      return selector ? { kind: 'labelNames', selector } : { kind: 'labelNames' };
    case 'labelValues': {
      const label = q.label?.trim();
      if (!label || !LABEL.test(label)) {
        return undefined;
      }
      return selector ? { kind: 'labelValues', label, selector } : { kind: 'labelValues', label };
    }
    case 'workspaces':
      return { kind: 'workspaces' };
  }
  return undefined;
}

/** The text form of a lookup: what the variables list shows as the variable's definition. */
export function variableQueryText(q: VariableQuery): string {
  switch (q.kind) {
    case 'labelNames':
      return `label_names(${q.selector ?? ''})`;
    case 'labelValues':
      return q.selector ? `label_values(${q.selector}, ${q.label})` : `label_values(${q.label})`;
    case 'workspaces':
      return 'workspaces()';
  }
}
