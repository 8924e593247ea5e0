import { createDataFrame, FieldType, LoadingState } from '@grafana/data';

import { formatProgress, progressOf, SearchProgress, withSearchProgress } from '../progress';

const base: SearchProgress = {
  done: false,
  limitReached: false,
  rangeCovered: 0.047,
  chunksCovered: 0.1,
  chunksScanned: 4,
  chunksTotal: 40,
  bytesScanned: 1_048_576,
  bytesTotal: 9_437_184,
  linesMatched: 210,
  linesSent: 210,
  slice: 3,
};

function frameWith(progress: unknown) {
  return createDataFrame({
    refId: 'A',
    meta: { custom: { progress }, notices: [{ severity: 'warning', text: 'kept' }] },
    fields: [{ name: 'body', type: FieldType.string, values: ['x'] }],
  });
}

describe('search progress', () => {
  it('describes a running search and a finished one', () => {
    expect(formatProgress(base)).toBe(
      'Search: 4.7% of the time range, 210 lines so far (4 of 40 chunks, 1.05 MB of 9.44 MB scanned)'
    );
    expect(formatProgress({ ...base, done: true, limitReached: true, rangeCovered: 0.5, linesSent: 1000 })).toBe(
      'Search: done, line limit reached: 1,000 lines after 50% of the time range (4 of 40 chunks, 1.05 MB of 9.44 MB scanned)'
    );
    expect(formatProgress({ ...base, chunksTotal: 0, bytesTotal: 0, chunksScanned: 1, linesSent: 1 })).toBe(
      'Search: 4.7% of the time range, 1 line so far (1 chunk, 1.05 MB scanned)'
    );
  });

  it('reads progress only where the backend put it', () => {
    expect(progressOf(frameWith(base))).toEqual(base);
    expect(progressOf(frameWith('nonsense'))).toBeUndefined();
    expect(progressOf(createDataFrame({ fields: [] }))).toBeUndefined();
  });

  it('adds one notice per frame and marks the last message done', () => {
    const frame = frameWith(base);
    const running = withSearchProgress({ data: [frame] });
    expect(running.state).toBe(LoadingState.Streaming);
    // A second message replaces the notice instead of adding one.
    withSearchProgress({ data: [frame] });
    expect(frame.meta?.notices?.map((n) => n.text)).toEqual(['kept', formatProgress(base)]);

    const last = withSearchProgress({ data: [frameWith({ ...base, done: true })] });
    expect(last.state).toBe(LoadingState.Done);
  });

  it('leaves responses without progress alone', () => {
    const res = { data: [createDataFrame({ fields: [] })], state: LoadingState.Streaming };
    expect(withSearchProgress(res)).toBe(res);
  });
});
