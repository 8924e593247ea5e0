import { createDataFrame, DataFrame, FieldType } from '@grafana/data';

import { importsFrom, latestPerRun, withLatestRuns } from '../imports';

function runs(ids: string[], done: number[]): DataFrame {
  return createDataFrame({
    refId: 'A',
    name: 'imports',
    meta: { preferredVisualisationType: 'table' },
    fields: [
      { name: 'time', type: FieldType.time, values: ids.map((_, i) => 1000 + i) },
      { name: 'run_id', type: FieldType.string, values: ids },
      { name: 'bytes_done', type: FieldType.number, values: done },
    ],
  });
}

describe('latestPerRun', () => {
  it('keeps the newest row of each run, in the order of the newest rows', () => {
    const out = latestPerRun(runs(['a', 'b', 'a', 'c', 'b', 'a'], [1, 10, 2, 100, 20, 3]));
    expect(out.length).toBe(3);
    expect(out.fields[1].values).toEqual(['c', 'b', 'a']);
    expect(out.fields[2].values).toEqual([100, 20, 3]);
    expect(out.fields[0].values).toEqual([1003, 1004, 1005]);
    expect(out).toMatchObject({ refId: 'A', name: 'imports', meta: { preferredVisualisationType: 'table' } });
  });

  it('passes frames without duplicates and frames of other queries as they are', () => {
    const unique = runs(['a', 'b'], [1, 2]);
    expect(latestPerRun(unique)).toBe(unique);
    const other = createDataFrame({ fields: [{ name: 'body', type: FieldType.string, values: ['x', 'x'] }] });
    expect(latestPerRun(other)).toBe(other);
    const empty = runs([], []);
    expect(latestPerRun(empty).length).toBe(0);
  });

  it('applies to every frame of a response', () => {
    const res = withLatestRuns({ data: [runs(['a', 'a'], [1, 2])], key: 'k' });
    expect(res.key).toBe('k');
    expect((res.data[0] as DataFrame).fields[2].values).toEqual([2]);
    expect(withLatestRuns({ data: [] })).toEqual({ data: [] });
  });
});

describe('importsFrom', () => {
  it('rounds the start down to the minute', () => {
    expect(importsFrom(1_700_000_059_999)).toBe(1_700_000_040_000);
    expect(importsFrom(1_700_000_040_000)).toBe(1_700_000_040_000);
  });
});
