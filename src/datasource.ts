import {
  AdHocVariableFilter,
  AnnotationQuery,
  CoreApp,
  DataFrame,
  dataFrameFromJSON,
  DataFrameJSON,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceGetTagKeysOptions,
  DataSourceGetTagValuesOptions,
  DataSourceInstanceSettings,
  DataSourceWithLogsContextSupport,
  DataSourceWithQueryModificationSupport,
  DataSourceWithSupplementaryQueriesSupport,
  DataSourceWithToggleableQueryFiltersSupport,
  LegacyMetricFindQueryOptions,
  LoadingState,
  LiveChannelScope,
  LogRowContextOptions,
  LogRowContextQueryDirection,
  LogRowModel,
  MetricFindValue,
  QueryFilterOptions,
  QueryFixAction,
  ScopedVars,
  StreamingFrameAction,
  SupplementaryQueryOptions,
  SupplementaryQueryType,
  TimeRange,
  ToggleFilterAction,
} from '@grafana/data';
import { DataSourceWithBackend, getDataSourceSrv, getGrafanaLiveSrv, getTemplateSrv } from '@grafana/runtime';
import { map, merge, Observable, of, takeWhile } from 'rxjs';

import { logFramesToAnnotations } from './annotations';
import { addDerivedFields } from './derivedFields';
import { CompletionDataProvider } from './logql/completion';
import { formatVariableValue, quote } from './logql/escape';
import { Interpolated, interpolateWithMap, SERVER_INTERVAL_VARIABLES } from './logql/interpolate';
import {
  addLabelFilter,
  addLineFilter,
  addMatcher,
  applyAdHocFilters,
  firstLogQuery,
  hasLabelFilter,
  hasMatcher,
  isMetricQuery,
  removeLabelFilter,
  removeMatcher,
  toggleLabelFilter,
  toggleMatcher,
} from './logql/modify';
import { scan } from './logql/scanner';
import { fromVariableModel, parseVariableQuery, VariableQuery } from './logql/variables';
import { IMPORTS_BUFFER_ROWS, importsFrom, ImportsStreamRequest, withLatestRuns } from './imports';
import { withSearchProgress } from './progress';
import { CostEstimate, DEFAULT_MAX_LINES, LogsiftOptions, LogsiftQuery, LogsiftVariableQuery } from './types';
import { LogsiftVariableSupport } from './variableSupport';

const RESOURCE_CACHE_MS = 60_000;
const WORKSPACE_LOOKBACK_MS = 30 * 24 * 3600_000;

/**
 * The backend resource that estimates what a query reads, from the server's index statistics:
 * {streams, chunks, entries, bytes, bytesHuman, summary}.
 */
export const COST_RESOURCE = 'cost';

/** The logsift datasource: LogQL through the plugin backend, streams through Grafana Live. */
export class LogsiftDatasource
  extends DataSourceWithBackend<LogsiftQuery, LogsiftOptions>
  implements
    DataSourceWithSupplementaryQueriesSupport<LogsiftQuery>,
    DataSourceWithLogsContextSupport<LogsiftQuery>,
    DataSourceWithQueryModificationSupport<LogsiftQuery>,
    DataSourceWithToggleableQueryFiltersSupport<LogsiftQuery>
{
  private readonly settings: LogsiftOptions;
  private readonly resourceCache = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(instanceSettings: DataSourceInstanceSettings<LogsiftOptions>) {
    super(instanceSettings);
    this.settings = instanceSettings.jsonData ?? {};
    this.variables = new LogsiftVariableSupport(this);
    this.annotations = {
      prepareAnnotation: (json: AnnotationQuery<LogsiftQuery>) => {
        // Older saved annotations kept the expression at the top level.
        const legacyExpr = (json as unknown as { expr?: string }).expr;
        if (!json.target && legacyExpr) {
          json.target = { refId: 'Anno', expr: legacyExpr, queryType: 'range' };
        }
        return json;
      },
      prepareQuery: (anno: AnnotationQuery<LogsiftQuery>) => {
        const target = anno.target;
        if (!target?.expr?.trim() || isMetricQuery(target.expr)) {
          return undefined;
        }
        return { ...target, queryType: 'range', maxLines: target.maxLines ?? 100 };
      },
      processEvents: (_anno: AnnotationQuery<LogsiftQuery>, frames: DataFrame[]) => of(logFramesToAnnotations(frames)),
    };
  }

  getDefaultQuery(_app: CoreApp): Partial<LogsiftQuery> {
    return { expr: '', queryType: 'range', editorMode: 'builder' };
  }

  defaultMaxLines(): number {
    return this.settings.maxLines ?? DEFAULT_MAX_LINES;
  }

  filterQuery(query: LogsiftQuery): boolean {
    // An import progress query has no expression.
    return !query.hide && (query.queryType === 'imports' || Boolean(query.expr?.trim()));
  }

  getQueryDisplayText(query: LogsiftQuery): string {
    if (query.queryType === 'imports') {
      return query.workspace ? `Import progress: ${query.workspace}` : 'Import progress: all workspaces';
    }
    return query.expr;
  }

  targetContainsTemplate(query: LogsiftQuery): boolean {
    const srv = getTemplateSrv();
    return srv.containsTemplate(query.expr) || Boolean(query.workspace && srv.containsTemplate(query.workspace));
  }

  /** Template variables and ad-hoc filters; the server resolves $__auto and the interval variables itself. */
  applyTemplateVariables(query: LogsiftQuery, scopedVars: ScopedVars, filters?: AdHocVariableFilter[]): LogsiftQuery {
    const srv = getTemplateSrv();
    const expr = applyAdHocFilters(srv.replace(query.expr ?? '', scopedVars, variableFormatter), filters);
    return {
      ...query,
      expr,
      workspace: query.workspace ? srv.replace(query.workspace, scopedVars) : query.workspace,
      legendFormat: query.legendFormat ? srv.replace(query.legendFormat, scopedVars) : query.legendFormat,
      step: query.step ? srv.replace(query.step, scopedVars) : query.step,
    };
  }

  /** Used when a panel's queries open in Explore: variables and ad-hoc filters are written in. */
  interpolateVariablesInQueries(
    queries: LogsiftQuery[],
    scopedVars: ScopedVars,
    filters?: AdHocVariableFilter[]
  ): LogsiftQuery[] {
    return queries.map((q) => ({ ...this.applyTemplateVariables(q, scopedVars, filters), datasource: this.getRef() }));
  }

  query(request: DataQueryRequest<LogsiftQuery>): Observable<DataQueryResponse> {
    const targets = request.targets.filter((t) => this.filterQuery(t));
    const imports = targets.filter((t) => t.queryType === 'imports');
    // Only log queries stream; a metric query asked to stream runs as a range query.
    const streamed = targets.filter(
      (t) => t.queryType !== 'imports' && (request.liveStreaming || t.queryType === 'stream') && !isMetricQuery(t.expr)
    );
    const queried = targets.filter((t) => !streamed.includes(t) && !imports.includes(t));

    const parts: Array<Observable<DataQueryResponse>> = [];
    if (queried.length > 0) {
      parts.push(super.query({ ...request, targets: queried }).pipe(map((r) => this.processResponse(r))));
    }
    for (const target of streamed) {
      parts.push(this.stream(request, target).pipe(map((r) => this.processResponse(r))));
    }
    for (const target of imports) {
      parts.push(this.importProgress(request, target));
    }
    if (parts.length === 0) {
      return of({ data: [] });
    }
    return merge(...parts);
  }

  /**
   * Live tail (Explore's live mode) or a streaming search over the time range, through the
   * backend's RunStream. The channel path carries a hash of what is asked, because Grafana Live
   * shares one stream between subscribers of the same path.
   */
  private stream(request: DataQueryRequest<LogsiftQuery>, target: LogsiftQuery): Observable<DataQueryResponse> {
    const query = this.applyTemplateVariables(target, request.scopedVars, request.filters);
    const tail = Boolean(request.liveStreaming);
    const data: StreamRequest = {
      refId: query.refId,
      expr: query.expr,
      workspace: query.workspace,
      maxLines: query.maxLines ?? this.settings.maxLines ?? DEFAULT_MAX_LINES,
      direction: query.direction,
    };
    if (!tail) {
      data.from = request.range.from.valueOf();
      data.to = request.range.to.valueOf();
      // Every run of a search is its own stream; identical tails may share one.
      data.run = request.requestId;
    }
    const path = `${tail ? 'tail' : 'search'}/${hashOf(JSON.stringify(data))}`;
    const live = getGrafanaLiveSrv().getDataStream({
      addr: {
        scope: LiveChannelScope.DataSource,
        stream: this.uid,
        // Grafana releases before `stream` read the datasource from `namespace`.
        // eslint-disable-next-line @typescript-eslint/no-deprecated
        namespace: this.uid,
        path,
        data,
      },
      key: `${request.requestId}.${query.refId}`,
      buffer: { maxLength: data.maxLines, action: StreamingFrameAction.Append },
    });
    if (tail) {
      return live;
    }
    // A search ends: its last message says done, and leaving the channel then lets it close.
    return live.pipe(
      map(withSearchProgress),
      takeWhile((r) => r.state !== LoadingState.Done, true)
    );
  }

  /**
   * The progress of workspace import runs through the backend's imports channel: the runs' state when
   * it subscribes, then every update, one row per run. Panels with the same workspace and start share
   * the channel; the backend gives each new subscriber the runs' state.
   */
  private importProgress(request: DataQueryRequest<LogsiftQuery>, target: LogsiftQuery): Observable<DataQueryResponse> {
    const workspace = target.workspace ? getTemplateSrv().replace(target.workspace, request.scopedVars) : undefined;
    const data: ImportsStreamRequest = {
      refId: target.refId,
      from: importsFrom(request.range.from.valueOf()),
    };
    if (workspace) {
      data.workspace = workspace;
    }
    const live = getGrafanaLiveSrv().getDataStream({
      addr: {
        scope: LiveChannelScope.DataSource,
        stream: this.uid,
        // eslint-disable-next-line @typescript-eslint/no-deprecated
        namespace: this.uid,
        path: `imports/${hashOf(JSON.stringify(data))}`,
        data,
      },
      key: `${request.requestId}.${target.refId}`,
      buffer: { maxLength: IMPORTS_BUFFER_ROWS, action: StreamingFrameAction.Append },
    });
    return live.pipe(map(withLatestRuns));
  }

  /** Adds the derived fields' links to logs frames. */
  processResponse(response: DataQueryResponse): DataQueryResponse {
    const configs = this.settings.derivedFields;
    if (!configs?.length || !response.data?.length) {
      return response;
    }
    const target = (uid: string) => {
      const ds = getDataSourceSrv().getInstanceSettings(uid);
      return ds ? { name: ds.name, type: ds.type } : undefined;
    };
    return { ...response, data: response.data.map((frame: DataFrame) => addDerivedFields(frame, configs, target)) };
  }

  // ---- resources ----------------------------------------------------------------------------

  private cachedResource<T>(path: string, params: Record<string, string | undefined>): Promise<T> {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== '') {
        clean[k] = v;
      }
    }
    const key = `${path}?${new URLSearchParams(clean).toString()}`;
    const hit = this.resourceCache.get(key);
    const now = Date.now();
    if (hit && now - hit.at < RESOURCE_CACHE_MS) {
      return hit.value as Promise<T>;
    }
    const value = this.getResource<T>(path, clean);
    this.resourceCache.set(key, { at: now, value });
    // A failure is not worth remembering.
    value.catch(() => this.resourceCache.delete(key));
    return value;
  }

  async getLabelNames(options: LabelLookup = {}): Promise<string[]> {
    const res = await this.cachedResource<unknown>('labels', {
      ...timeParams(options.range),
      query: options.selector,
      workspace: options.workspace,
    });
    return stringList(res);
  }

  async getLabelValues(label: string, options: LabelLookup = {}): Promise<string[]> {
    const res = await this.cachedResource<unknown>(`label/${encodeURIComponent(label)}/values`, {
      ...timeParams(options.range),
      query: options.selector,
      workspace: options.workspace,
    });
    return stringList(res);
  }

  /**
   * Workspace names with data in the last 30 days or in the given range: an imported bundle's
   * lines keep their own (often old) timestamps, so the lookup's default hour would miss most.
   */
  async getWorkspaces(range?: TimeRange): Promise<string[]> {
    const now = Date.now();
    // Whole minutes, so that the cache key holds between calls.
    const end = Math.ceil(now / 60_000) * 60_000;
    const windows = [{ start: end - WORKSPACE_LOOKBACK_MS, end }];
    if (range && range.from.valueOf() < end - WORKSPACE_LOOKBACK_MS) {
      windows.push({ start: range.from.valueOf(), end: Math.min(range.to.valueOf(), end) });
    }
    const answers = await Promise.all(
      windows.map((w) => this.cachedResource<unknown>('workspaces', { start: `${w.start}`, end: `${w.end}` }))
    );
    const names = new Set<string>();
    for (const res of answers) {
      const body = res as { workspaces?: unknown[]; data?: unknown[] };
      const list = Array.isArray(res) ? res : (body?.workspaces ?? body?.data ?? []);
      for (const w of list) {
        const name =
          typeof w === 'string' ? w : ((w as { name?: string; id?: string })?.name ?? (w as { id?: string })?.id);
        if (typeof name === 'string' && name !== '') {
          names.add(name);
        }
      }
    }
    return [...names].sort();
  }

  /** What running the query would read, for the editor to show before it runs. */
  async estimate(query: LogsiftQuery, range?: TimeRange): Promise<CostEstimate> {
    const expr = this.interpolateForServer(query.expr).text;
    return this.getResource<CostEstimate>(COST_RESOURCE, {
      expr,
      ...timeParams(range),
      ...(query.workspace ? { workspace: getTemplateSrv().replace(query.workspace) } : {}),
    });
  }

  /**
   * Asks the server's parser about expr. Resolves with undefined when it parses, or with the
   * error message and the substitution map to place it on the unsubstituted text.
   */
  async validate(expr: string): Promise<{ message: string; interpolated: Interpolated } | undefined> {
    const interpolated = this.interpolateForServer(expr);
    try {
      await this.getResource('format', { expr: interpolated.text }, { showErrorAlert: false });
      return undefined;
    } catch (err) {
      const message = errorMessage(err);
      if (!isBadRequest(err) || message.startsWith('datasource settings')) {
        // The server could not be asked; that says nothing about the query.
        return undefined;
      }
      return { message, interpolated };
    }
  }

  /** The server's formatting of expr, or undefined when it does not parse. */
  async format(expr: string): Promise<string | undefined> {
    try {
      const res = await this.getResource<unknown>('format', { expr }, { showErrorAlert: false });
      if (typeof res === 'string') {
        return res;
      }
      return (res as { expr?: string })?.expr;
    } catch {
      return undefined;
    }
  }

  /** Substitutes variables for the server's parser: interval variables become a duration, others their value. */
  interpolateForServer(expr: string): Interpolated {
    const srv = getTemplateSrv();
    return interpolateWithMap(expr, (ref, name) => {
      if (SERVER_INTERVAL_VARIABLES.includes(name)) {
        return '1m';
      }
      return srv.replace(ref, undefined, variableFormatter);
    });
  }

  completionProvider(range?: TimeRange, workspace?: string): CompletionDataProvider {
    return {
      labelNames: (selector) => this.getLabelNames({ selector: selector || undefined, range, workspace }),
      labelValues: (label, selector) =>
        this.getLabelValues(label, { selector: selector || undefined, range, workspace }),
      variables: () =>
        getTemplateSrv()
          .getVariables()
          .map((v) => v.name),
    };
  }

  // ---- template variables and ad-hoc filters -------------------------------------------------

  async metricFindQuery(
    query: string | { query?: string; expr?: string } | LogsiftVariableQuery,
    options?: LegacyMetricFindQueryOptions
  ): Promise<MetricFindValue[]> {
    const srv = getTemplateSrv();
    let parsed: VariableQuery | undefined;
    let shown: string;
    if (isVariableModel(query)) {
      parsed = fromVariableModel({
        ...query,
        label: query.label ? srv.replace(query.label, options?.scopedVars) : query.label,
        stream: query.stream ? srv.replace(query.stream, options?.scopedVars, variableFormatter) : query.stream,
      });
      shown = JSON.stringify(query);
    } else {
      shown = typeof query === 'string' ? query : (query?.query ?? query?.expr ?? '');
      parsed = parseVariableQuery(srv.replace(shown, options?.scopedVars, variableFormatter));
    }
    if (!parsed) {
      throw new Error(
        `Unsupported variable query ${shown}: use label_names(), label_values(label), label_values({selector}, label) or workspaces()`
      );
    }
    let values: string[];
    switch (parsed.kind) {
      case 'labelNames':
        values = await this.getLabelNames({ selector: parsed.selector, range: options?.range });
        break;
      case 'labelValues':
        values = await this.getLabelValues(parsed.label, { selector: parsed.selector, range: options?.range });
        break;
      case 'workspaces':
        values = await this.getWorkspaces(options?.range);
        break;
    }
    return values.map((text) => ({ text, value: text }));
  }

  async getTagKeys(options?: DataSourceGetTagKeysOptions<LogsiftQuery>): Promise<MetricFindValue[]> {
    const names = await this.getLabelNames({
      selector: selectorFromFilters(options?.filters),
      range: options?.timeRange,
    });
    return names.map((text) => ({ text }));
  }

  async getTagValues(options: DataSourceGetTagValuesOptions<LogsiftQuery>): Promise<MetricFindValue[]> {
    const others = options.filters?.filter((f) => f.key !== options.key);
    const values = await this.getLabelValues(options.key, {
      selector: selectorFromFilters(others),
      range: options.timeRange,
    });
    return values.map((text) => ({ text }));
  }

  // ---- log details filters -------------------------------------------------------------------

  /**
   * Filters from log details. A stream label (label type I in the frame) becomes a stream
   * matcher, which selects fewer streams; other labels become label filters at the end of the
   * pipeline, after the parsers that may produce them.
   */
  modifyQuery(query: LogsiftQuery, action: QueryFixAction): LogsiftQuery {
    const key = action.options?.key ?? '';
    const value = action.options?.value ?? '';
    const stream = isStreamLabel(action.frame, key);
    let expr = query.expr ?? '';
    switch (action.type) {
      case 'ADD_FILTER':
      case 'ADD_FILTER_OUT': {
        const op = action.type === 'ADD_FILTER' ? '=' : '!=';
        const opposite = op === '=' ? '!=' : '=';
        if (stream) {
          if (!hasMatcher(expr, key, op, value)) {
            expr = addMatcher(removeMatcher(expr, key, opposite, value), key, op, value);
          }
        } else if (!hasLabelFilter(expr, key, value, op)) {
          expr = addLabelFilter(removeLabelFilter(expr, key, value, opposite), key, value, op);
        }
        break;
      }
      case 'ADD_STRING_FILTER':
        expr = addLineFilter(expr, value, '|=');
        break;
      case 'ADD_STRING_FILTER_OUT':
        expr = addLineFilter(expr, value, '!=');
        break;
    }
    return { ...query, expr };
  }

  getSupportedQueryModifications(): string[] {
    return ['ADD_FILTER', 'ADD_FILTER_OUT', 'ADD_STRING_FILTER', 'ADD_STRING_FILTER_OUT'];
  }

  toggleQueryFilter(query: LogsiftQuery, filter: ToggleFilterAction): LogsiftQuery {
    const { key, value } = filter.options;
    const want = filter.type === 'FILTER_FOR' ? '=' : '!=';
    const expr = query.expr ?? '';
    return {
      ...query,
      expr: isStreamLabel(filter.frame, key)
        ? toggleMatcher(expr, key, value, want)
        : toggleLabelFilter(expr, key, value, want),
    };
  }

  queryHasFilter(query: LogsiftQuery, filter: QueryFilterOptions): boolean {
    const expr = query.expr ?? '';
    return hasLabelFilter(expr, filter.key, filter.value, '=') || hasMatcher(expr, filter.key, '=', filter.value);
  }

  // ---- supplementary queries (Explore's histogram and sample) --------------------------------

  getSupportedSupplementaryQueryTypes(): SupplementaryQueryType[] {
    return [SupplementaryQueryType.LogsVolume, SupplementaryQueryType.LogsSample];
  }

  getSupplementaryRequest(
    type: SupplementaryQueryType,
    request: DataQueryRequest<LogsiftQuery>,
    options?: SupplementaryQueryOptions
  ): DataQueryRequest<LogsiftQuery> | undefined {
    const opts = options ?? ({ type } as SupplementaryQueryOptions);
    const targets = request.targets
      .map((t) => this.getSupplementaryQuery({ ...opts, type } as SupplementaryQueryOptions, t))
      .filter((t): t is LogsiftQuery => t !== undefined);
    if (targets.length === 0) {
      return undefined;
    }
    return { ...request, targets, liveStreaming: false };
  }

  getSupplementaryQuery(options: SupplementaryQueryOptions, query: LogsiftQuery): LogsiftQuery | undefined {
    if (query.hide || !query.expr?.trim()) {
      return undefined;
    }
    const expr = withoutComments(query.expr);
    switch (options.type) {
      case SupplementaryQueryType.LogsVolume:
        if (isMetricQuery(expr)) {
          return undefined;
        }
        return {
          refId: `log-volume-${query.refId}`,
          expr: `sum by (detected_level) (count_over_time(${expr} [$__auto]))`,
          queryType: 'range',
          workspace: query.workspace,
          supportingQueryType: 'logsVolume',
        };
      case SupplementaryQueryType.LogsSample: {
        if (!isMetricQuery(expr)) {
          return undefined;
        }
        const logs = firstLogQuery(expr);
        if (!logs) {
          return undefined;
        }
        return {
          refId: `log-sample-${query.refId}`,
          expr: logs,
          queryType: 'range',
          maxLines: options.limit ?? 100,
          workspace: query.workspace,
          supportingQueryType: 'logsSample',
        };
      }
      default:
        return undefined;
    }
  }

  // ---- log context ---------------------------------------------------------------------------

  /**
   * The lines around a row, in the same stream: by the agent's line numbers when entries carry
   * them (imported files), else by time. POSTed, because the row's labels and line may be long.
   */
  async getLogRowContext(
    row: LogRowModel,
    options?: LogRowContextOptions,
    query?: LogsiftQuery
  ): Promise<DataQueryResponse> {
    const limit = options?.limit ?? 10;
    const forward = options?.direction === LogRowContextQueryDirection.Forward;
    const types = labelTypesOf(row);
    const res = await this.postResource<ContextResponse>('context', {
      ts: row.timeEpochNs,
      labels: row.labels ?? {},
      ...(types ? { labelTypes: types } : {}),
      body: row.raw,
      before: forward ? 0 : limit,
      after: forward ? limit : 0,
      ...(query?.workspace ? { workspace: query.workspace } : {}),
    });
    const frame = forward ? res?.after : res?.before;
    return { data: frame ? [dataFrameFromJSON(frame)] : [] };
  }

  async getLogRowContextQuery(
    row: LogRowModel,
    options?: LogRowContextOptions,
    query?: LogsiftQuery
  ): Promise<LogsiftQuery | null> {
    const selector = contextSelector(row);
    if (!selector) {
      return null;
    }
    return {
      refId: `context-${query?.refId ?? row.dataFrame.refId ?? 'A'}`,
      expr: selector,
      queryType: 'range',
      workspace: query?.workspace,
      maxLines: options?.limit ?? 10,
      direction: options?.direction === LogRowContextQueryDirection.Forward ? 'forward' : 'backward',
    };
  }
}

/** What the frontend sends as `data` when it subscribes to a stream channel. */
export interface StreamRequest {
  refId: string;
  expr: string;
  workspace?: string;
  maxLines: number;
  direction?: string;
  /** Search only: the time range in epoch milliseconds. */
  from?: number;
  to?: number;
  run?: string;
}

/** The backend's `context` resource: the lines before and after the row, as data frames. */
interface ContextResponse {
  before?: DataFrameJSON;
  after?: DataFrameJSON;
  method?: 'line' | 'timestamp';
  selector?: string;
}

interface LabelLookup {
  selector?: string;
  range?: TimeRange;
  workspace?: string;
}

function labelTypesOf(row: LogRowModel): Record<string, string> | undefined {
  const field = row.dataFrame.fields.find((f) => f.name === 'labelTypes');
  return field?.values[row.rowIndex] as Record<string, string> | undefined;
}

/** The stream selector of a row: its indexed labels when the frame says which those are, else all of them. */
function contextSelector(row: LogRowModel): string {
  const types = labelTypesOf(row);
  const entries = Object.entries(row.labels ?? {}).filter(
    ([k]) => !types || types[k] === 'I' || types[k] === undefined
  );
  if (entries.length === 0) {
    return '';
  }
  return `{${entries.map(([k, v]) => `${k}=${quote(String(v))}`).join(', ')}}`;
}

/** Grafana's interpolation hook: several values become a regex alternation of literals. */
export function variableFormatter(
  value: string | string[],
  variable?: { multi?: boolean; includeAll?: boolean }
): string {
  return formatVariableValue(value, Boolean(variable?.multi || variable?.includeAll));
}

/** True when the frame's labelTypes (the backend's I, S, P) say that key is a stream label. */
function isStreamLabel(frame: DataFrame | undefined, key: string): boolean {
  const field = frame?.fields.find((f) => f.name === 'labelTypes');
  if (!field) {
    return false;
  }
  for (const v of field.values) {
    const types = typeof v === 'string' ? safeJSON(v) : v;
    const t = (types as Record<string, unknown> | undefined)?.[key];
    if (t !== undefined) {
      return t === 'I';
    }
  }
  return false;
}

function safeJSON(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function isVariableModel(q: unknown): q is LogsiftVariableQuery {
  const type = (q as { type?: unknown } | undefined)?.type;
  return typeof q === 'object' && (type === 'labelNames' || type === 'labelValues' || type === 'workspaces');
}

function selectorFromFilters(filters: AdHocVariableFilter[] | undefined): string | undefined {
  const usable = (filters ?? []).filter(
    (f) => ['=', '!=', '=~', '!~'].includes(f.operator) && /^[A-Za-z_]\w*$/.test(f.key)
  );
  if (usable.length === 0) {
    return undefined;
  }
  return `{${usable.map((f) => `${f.key}${f.operator}${quote(f.value)}`).join(', ')}}`;
}

/** start and end as the Loki API takes them: epoch nanoseconds. */
function timeParams(range?: TimeRange): Record<string, string> {
  if (!range) {
    return {};
  }
  return { start: `${range.from.valueOf()}000000`, end: `${range.to.valueOf()}000000` };
}

function stringList(res: unknown): string[] {
  const list = Array.isArray(res) ? res : ((res as { data?: unknown })?.data ?? []);
  return Array.isArray(list) ? list.filter((v): v is string => typeof v === 'string') : [];
}

function withoutComments(expr: string): string {
  return scan(expr)
    .filter((t) => t.kind !== 'comment')
    .map((t) => t.text)
    .join('')
    .trim();
}

function errorMessage(err: unknown): string {
  const e = err as { data?: unknown; message?: string; statusText?: string };
  const data = e?.data as { message?: string; error?: string } | string | undefined;
  let message: string;
  if (typeof data === 'string' && data) {
    message = data;
  } else if (data && typeof data === 'object') {
    message = data.message ?? data.error ?? e.message ?? 'error';
  } else {
    message = e?.message ?? e?.statusText ?? String(err);
  }
  return unwrapJSONMessage(message);
}

/** The backend passes the server's error body through as text; that body may itself be JSON. */
function unwrapJSONMessage(message: string): string {
  if (!message.trimStart().startsWith('{')) {
    return message;
  }
  try {
    const inner = JSON.parse(message) as { error?: unknown; message?: unknown };
    const text = inner.error ?? inner.message;
    return typeof text === 'string' ? text : message;
  } catch {
    return message;
  }
}

function isBadRequest(err: unknown): boolean {
  const status = (err as { status?: number })?.status;
  return status === 400 || status === 422;
}

/** Two FNV-1a hashes of s with different seeds, 16 hex digits; names a stream channel. */
export function hashOf(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
