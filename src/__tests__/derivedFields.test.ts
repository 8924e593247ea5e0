import { createDataFrame, FieldType } from '@grafana/data';

import { addDerivedFields, derivedFieldLink, extractValue, logFields } from '../derivedFields';
import { formatBytes, formatEstimate } from '../estimate';

describe('extractValue', () => {
  it('takes the first capture group, or the whole match without groups', () => {
    expect(extractValue({ name: 'a', matcherRegex: 'trace_id=(\\w+)', url: '' }, 'x trace_id=abc y', undefined)).toBe(
      'abc'
    );
    expect(extractValue({ name: 'a', matcherRegex: '\\d{3}', url: '' }, 'status 404', undefined)).toBe('404');
    expect(extractValue({ name: 'a', matcherRegex: 'nope=(\\w+)', url: '' }, 'status 404', undefined)).toBeNull();
  });

  it('reads a label for label matchers', () => {
    const f = { name: 'a', matcherType: 'label' as const, matcherRegex: 'trace_id', url: '' };
    expect(extractValue(f, 'line', { trace_id: 'ff' })).toBe('ff');
    expect(extractValue(f, 'line', {})).toBeNull();
  });

  it('treats an invalid regex as no match rather than failing the query', () => {
    expect(extractValue({ name: 'a', matcherRegex: '(', url: '' }, 'x', undefined)).toBeNull();
  });
});

describe('addDerivedFields', () => {
  const frame = createDataFrame({
    fields: [
      { name: 'timestamp', type: FieldType.time, values: [1, 2] },
      { name: 'body', type: FieldType.string, values: ['req id=7 ok', 'plain'] },
      { name: 'labels', type: FieldType.other, values: ['{"user":"ann"}', { user: 'bob' }] },
    ],
  });

  it('adds one field per configuration that matched something', () => {
    const out = addDerivedFields(frame, [
      { name: 'req', matcherRegex: 'id=(\\d+)', url: 'https://x/${__value.raw}', urlDisplayLabel: 'Open' },
      { name: 'user', matcherType: 'label', matcherRegex: 'user', url: 'https://u/${__value.raw}' },
      { name: 'none', matcherRegex: 'zzz', url: 'x' },
      { name: '', matcherRegex: 'id', url: 'x' },
    ]);
    expect(out.fields.map((f) => f.name)).toEqual(['timestamp', 'body', 'labels', 'req', 'user']);
    expect(out.fields[3].values).toEqual(['7', null]);
    expect(out.fields[3].config.links).toEqual([{ title: 'Open', url: 'https://x/${__value.raw}', targetBlank: true }]);
    expect(out.fields[4].values).toEqual(['ann', 'bob']);
  });

  it('leaves frames that are not logs alone', () => {
    const metrics = createDataFrame({ fields: [{ name: 'Value', type: FieldType.number, values: [1] }] });
    expect(addDerivedFields(metrics, [{ name: 'x', matcherRegex: '.', url: '' }])).toBe(metrics);
    expect(logFields(metrics)).toBeUndefined();
  });

  it('builds internal links with the target datasource', () => {
    expect(
      derivedFieldLink(
        { name: 't', matcherRegex: 'x', url: '${__value.raw}', datasourceUid: 'tempo-uid' },
        { name: 'Tempo', type: 'tempo' }
      )
    ).toEqual({
      title: '',
      url: '',
      internal: {
        query: { refId: 'A', query: '${__value.raw}', queryType: 'traceql' },
        datasourceUid: 'tempo-uid',
        datasourceName: 'Tempo',
      },
    });
    expect(
      derivedFieldLink({ name: 't', matcherRegex: 'x', url: '{id="${__value.raw}"}', datasourceUid: 'other' }).internal
    ).toEqual({ query: { refId: 'A', query: '{id="${__value.raw}"}' }, datasourceUid: 'other', datasourceName: '' });
  });
});

describe('formatEstimate', () => {
  it('reads as chunks and decimal bytes', () => {
    expect(formatEstimate({ streams: 1, chunks: 1, entries: 10, bytes: 512 })).toBe('≈ 1 chunk, 512 B to scan');
    expect(formatEstimate({ streams: 3, chunks: 1234, entries: 10, bytes: 3_456_789 })).toBe(
      '≈ 1,234 chunks, 3.46 MB to scan'
    );
    expect(formatBytes(12_500_000_000)).toBe('12.5 GB');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(-1)).toBe('? B');
  });
});
