/**
 * Derived fields: values taken from each log line (a regex capture) or from one of its labels,
 * shown as links in log details.
 */
import { DataFrame, DataLink, Field, FieldType } from '@grafana/data';

import { DerivedFieldConfig } from './types';

export interface LogFrameFields {
  body: Field<string>;
  labels?: Field;
}

/** The line and labels fields of a logs frame, as the backend names them (dataplane) or Loki does. */
export function logFields(frame: DataFrame): LogFrameFields | undefined {
  const body =
    frame.fields.find(
      (f) => f.type === FieldType.string && (f.name === 'body' || f.name === 'Line' || f.name === 'line')
    ) ??
    (frame.meta?.preferredVisualisationType === 'logs'
      ? frame.fields.find((f) => f.type === FieldType.string)
      : undefined);
  if (!body) {
    return undefined;
  }
  const labels = frame.fields.find((f) => f.name === 'labels' && f.type === FieldType.other);
  return { body: body as Field<string>, labels };
}

/** The value one derived field extracts from one line, or null. */
export function extractValue(
  config: DerivedFieldConfig,
  line: string,
  labels: Record<string, unknown> | undefined
): string | null {
  if (config.matcherType === 'label') {
    const v = labels?.[config.matcherRegex];
    return v === undefined || v === null ? null : String(v);
  }
  let re: RegExp;
  try {
    re = new RegExp(config.matcherRegex);
  } catch {
    return null;
  }
  const m = re.exec(line);
  if (!m) {
    return null;
  }
  return m.length > 1 ? (m[1] ?? null) : m[0];
}

function parseLabels(v: unknown): Record<string, unknown> | undefined {
  if (!v) {
    return undefined;
  }
  if (typeof v === 'string') {
    try {
      return JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  return v as Record<string, unknown>;
}

/** The datasource an internal link opens, as Grafana knows it. */
export interface LinkTarget {
  name?: string;
  type?: string;
}

export function derivedFieldLink(config: DerivedFieldConfig, target: LinkTarget = {}): DataLink {
  if (config.datasourceUid) {
    // Tempo reads a bare trace id as a TraceQL query of type traceql; other datasources take the query as is.
    const queryType = target.type === 'tempo' ? { queryType: 'traceql' } : {};
    return {
      title: config.urlDisplayLabel ?? '',
      url: '',
      internal: {
        query: { refId: 'A', query: config.url, ...queryType },
        datasourceUid: config.datasourceUid,
        datasourceName: target.name ?? '',
      },
    };
  }
  return { title: config.urlDisplayLabel ?? '', url: config.url, targetBlank: true };
}

/**
 * Returns frame with one string field per derived field added, each with its link. Frames that
 * are not logs, and configurations that match nothing, leave the frame unchanged.
 */
export function addDerivedFields(
  frame: DataFrame,
  configs: DerivedFieldConfig[] | undefined,
  linkTarget: (uid: string) => LinkTarget | undefined = () => undefined
): DataFrame {
  if (!configs || configs.length === 0) {
    return frame;
  }
  const fields = logFields(frame);
  if (!fields) {
    return frame;
  }
  const added: Field[] = [];
  for (const config of configs) {
    if (!config.name || !config.matcherRegex) {
      continue;
    }
    const values: Array<string | null> = [];
    for (let i = 0; i < frame.length; i++) {
      values.push(extractValue(config, fields.body.values[i] ?? '', parseLabels(fields.labels?.values[i])));
    }
    if (values.every((v) => v === null)) {
      continue;
    }
    const link = derivedFieldLink(config, (config.datasourceUid && linkTarget(config.datasourceUid)) || {});
    added.push({ name: config.name, type: FieldType.string, values, config: { links: [link] } });
  }
  if (added.length === 0) {
    return frame;
  }
  return { ...frame, fields: [...frame.fields.filter((f) => !added.some((a) => a.name === f.name)), ...added] };
}
