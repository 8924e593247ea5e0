/**
 * The progress of a streaming search, as the backend puts it in `meta.custom.progress` of every
 * frame on a search channel, turned into what Grafana shows: a notice on the frame, and the
 * response's loading state (Done once the backend says the search is complete).
 */
import { DataFrame, DataQueryResponse, LoadingState, QueryResultMetaNotice } from '@grafana/data';

import { formatBytes } from './estimate';

/** Mirrors datasource/plugin.Progress. */
export interface SearchProgress {
  done: boolean;
  limitReached: boolean;
  /** Share of the time range searched, 0 to 1. */
  rangeCovered: number;
  /** Share of the range's chunks covered, 0 to 1; -1 when the index could not tell. */
  chunksCovered: number;
  chunksScanned: number;
  chunksTotal: number;
  bytesScanned: number;
  bytesTotal: number;
  linesMatched: number;
  linesSent: number;
  slice: number;
}

/** Marks our notice so that the next message replaces it rather than adding another. */
const NOTICE_PREFIX = 'Search: ';

export function progressOf(frame: DataFrame | undefined): SearchProgress | undefined {
  const p = (frame?.meta?.custom as { progress?: unknown } | undefined)?.progress;
  if (!p || typeof p !== 'object' || typeof (p as SearchProgress).rangeCovered !== 'number') {
    return undefined;
  }
  return p as SearchProgress;
}

function percent(share: number): string {
  const v = Math.max(0, Math.min(1, share)) * 100;
  return `${v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1)}%`;
}

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** One line for people: how far the search is and what it found. */
export function formatProgress(p: SearchProgress): string {
  const lines = plural(p.linesSent, 'line', 'lines');
  const chunks =
    p.chunksTotal > 0
      ? `${p.chunksScanned.toLocaleString('en-US')} of ${plural(p.chunksTotal, 'chunk', 'chunks')}`
      : plural(p.chunksScanned, 'chunk', 'chunks');
  const bytes =
    p.bytesTotal > 0
      ? `${formatBytes(p.bytesScanned)} of ${formatBytes(p.bytesTotal)}`
      : `${formatBytes(p.bytesScanned)}`;
  if (p.done) {
    const why = p.limitReached ? ', line limit reached' : '';
    return `${NOTICE_PREFIX}done${why}: ${lines} after ${percent(p.rangeCovered)} of the time range (${chunks}, ${bytes} scanned)`;
  }
  return `${NOTICE_PREFIX}${percent(p.rangeCovered)} of the time range, ${lines} so far (${chunks}, ${bytes} scanned)`;
}

/**
 * Adds the search's progress to a response from a search channel: a notice on each frame that
 * carries progress, and state Done on the last message. Responses without progress pass as they are.
 */
export function withSearchProgress(response: DataQueryResponse): DataQueryResponse {
  let done = false;
  let seen = false;
  for (const frame of (response.data ?? []) as DataFrame[]) {
    const p = progressOf(frame);
    if (!p) {
      continue;
    }
    seen = true;
    done = done || p.done;
    const notice: QueryResultMetaNotice = { severity: 'info', text: formatProgress(p) };
    const others = (frame.meta?.notices ?? []).filter((n) => !n.text.startsWith(NOTICE_PREFIX));
    // The frame is Grafana Live's streaming frame, which takes its meta from each message's schema;
    // it is set in place because a copy would no longer be that streaming frame.
    frame.meta = { ...frame.meta, notices: [...others, notice] };
  }
  if (!seen) {
    return response;
  }
  return { ...response, state: done ? LoadingState.Done : LoadingState.Streaming };
}
