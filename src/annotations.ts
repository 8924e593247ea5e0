/** Log lines as dashboard annotations: one annotation per line, tagged with its labels' values. */
import { AnnotationEvent, DataFrame, FieldType } from '@grafana/data';

import { logFields } from './derivedFields';

export function logFramesToAnnotations(frames: DataFrame[]): AnnotationEvent[] {
  const events: AnnotationEvent[] = [];
  for (const frame of frames) {
    const fields = logFields(frame);
    const time = frame.fields.find((f) => f.type === FieldType.time);
    if (!fields || !time) {
      continue;
    }
    for (let i = 0; i < frame.length; i++) {
      const labels = labelsAt(fields.labels?.values[i]);
      events.push({
        time: toMillis(time.values[i]),
        text: fields.body.values[i] ?? '',
        tags: Object.entries(labels)
          .filter(([k]) => !k.startsWith('__'))
          .map(([, v]) => String(v)),
      });
    }
  }
  return events.sort((a, b) => (a.time ?? 0) - (b.time ?? 0));
}

function labelsAt(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v);
    } catch {
      return {};
    }
  }
  return (v as Record<string, unknown>) ?? {};
}

function toMillis(v: unknown): number {
  if (typeof v === 'number') {
    return v;
  }
  if (typeof v === 'string') {
    const n = Number(v);
    return Number.isNaN(n) ? Date.parse(v) : n;
  }
  return v instanceof Date ? v.getTime() : 0;
}
