import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/**
 * range: a LogQL range query; instant: a metric query at one time; stream: results pushed through Grafana Live;
 * imports: the progress of workspace import runs, live (no expression; the workspace is optional).
 */
export type LogsiftQueryType = 'range' | 'instant' | 'stream' | 'imports';

export type LogsiftDirection = 'backward' | 'forward';

/** Marks the queries Explore runs beside the user's own (histogram, sample lines). */
export type SupportingQueryType = 'logsVolume' | 'logsSample' | 'dataSample';

export type EditorMode = 'builder' | 'code';

export type LogsiftFormat = 'time_series' | 'table';

/** The query model; the Go backend decodes the same JSON. */
export interface LogsiftQuery extends DataQuery {
  expr: string;
  queryType?: LogsiftQueryType;
  maxLines?: number;
  direction?: LogsiftDirection;
  workspace?: string;
  legendFormat?: string;
  step?: string;
  resolution?: number;
  supportingQueryType?: SupportingQueryType;
  /** A metric query's answer: a frame per series (default) or one table with a column per label. */
  format?: LogsiftFormat;
  /** Remembered by the editor only; the backend ignores it. */
  editorMode?: EditorMode;
}

export type LogsiftVariableQueryType = 'labelNames' | 'labelValues' | 'workspaces';

/** A query variable's query, as the variable editor saves it. */
export interface LogsiftVariableQuery extends DataQuery {
  type: LogsiftVariableQueryType;
  /** labelValues: the label whose values are listed. */
  label?: string;
  /** Optional stream selector (and pipeline) that narrows the lookup, e.g. {env="prod"}. */
  stream?: string;
}

/** A link built from each log line: a regex capture in the line or the value of a label. */
export interface DerivedFieldConfig {
  name: string;
  /** regex: matcherRegex runs on the line (first capture group, else the whole match); label: matcherRegex names a label. */
  matcherType?: 'regex' | 'label';
  matcherRegex: string;
  /** External URL, or the query sent to datasourceUid for an internal link; ${__value.raw} is the extracted value. */
  url: string;
  urlDisplayLabel?: string;
  datasourceUid?: string;
}

export interface LogsiftOptions extends DataSourceJsonData {
  tenant?: string;
  timeoutSeconds?: number;
  maxLines?: number;
  tlsSkipVerify?: boolean;
  tlsAuthWithCACert?: boolean;
  derivedFields?: DerivedFieldConfig[];
}

export interface LogsiftSecureJsonData {
  apiToken?: string;
  tlsCACert?: string;
}

/** The backend's `cost` resource: what a query's selectors cover, before line filters skip chunks. */
export interface CostEstimate {
  streams: number;
  chunks: number;
  entries: number;
  bytes: number;
  /** The backend's own wording, e.g. "at most 3.2 MiB in 12000 lines, 14 chunks, 2 streams (...)". */
  summary?: string;
}

export const DEFAULT_MAX_LINES = 1000;
