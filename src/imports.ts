/**
 * Import progress: the backend's imports channel sends one row per state of a run (time, run_id,
 * workspace, status, files and bytes done of the totals, lines, percent, throughput, error), appended
 * to Grafana Live's buffer; panels want one row per run, its newest state.
 */
import { DataFrame, DataQueryResponse, Field } from '@grafana/data';

/** What the frontend sends as `data` when it subscribes to an imports channel. */
export interface ImportsStreamRequest {
  refId: string;
  workspace?: string;
  /** Epoch milliseconds: finished runs updated since then are in the backfill, besides running ones. */
  from: number;
}

/** Rows kept in the channel's buffer: about three hours of one run's updates at one a second. */
export const IMPORTS_BUFFER_ROWS = 10_000;

/** The run id column of an imports frame. */
export const RUN_ID_FIELD = 'run_id';

/** The frame with only the newest row of each run, runs in the order of their newest row. */
export function latestPerRun(frame: DataFrame): DataFrame {
  const ids = frame.fields.find((f) => f.name === RUN_ID_FIELD);
  if (!ids) {
    return frame;
  }
  const length = frame.length ?? ids.values.length;
  const last = new Map<unknown, number>();
  for (let i = 0; i < length; i++) {
    last.set(ids.values[i], i);
  }
  if (last.size === length) {
    return frame;
  }
  const keep = [...last.values()].sort((a, b) => a - b);
  const fields: Field[] = frame.fields.map((f) => ({ ...f, values: keep.map((i) => f.values[i]) }));
  return { name: frame.name, refId: frame.refId, meta: frame.meta, fields, length: keep.length };
}

/** A response of an imports channel with one row per run in each frame. */
export function withLatestRuns(response: DataQueryResponse): DataQueryResponse {
  if (!response.data?.length) {
    return response;
  }
  return { ...response, data: (response.data as DataFrame[]).map(latestPerRun) };
}

/** The channel's start: the range's start to the minute, so that refreshes within a minute share one channel. */
export function importsFrom(rangeFrom: number): number {
  return Math.floor(rangeFrom / 60_000) * 60_000;
}
