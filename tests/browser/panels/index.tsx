/**
 * The provisioned dashboards as Grafana draws them, for the browser check and docs/images/.
 *
 * `?dashboard=<uid>` loads tests/browser/panels/data/<uid>.json (written by
 * `go test ./provisioning/render -update`): each panel's JSON, the request Grafana would send
 * for it and the answer the plugin backend (or Prometheus) gave. Each panel's queries run
 * through the datasource's own frontend code: the built plugin (dist/module.js, loaded as
 * Grafana loads it) for logsift panels, DataSourceWithBackend for Prometheus panels. They
 * write the dashboard's variables into the queries and post to /api/ds/query, which this page
 * answers from the fixture only when the request is the one recorded; anything else is an
 * error on the panel. A query the plugin subscribes to through Grafana Live instead (import
 * progress) gets the frames the backend's QueryData answered for it, once. The answer then takes Grafana's path to the panel: toDataQueryResponse,
 * the panel's transformations, field config defaults and overrides, and the visualisation
 * (viz.tsx) inside PanelChrome on Grafana's 24-column grid. The page's header (title, time
 * range, variable values) is its own, not Grafana's.
 */
import * as grafanaData from '@grafana/data';
import {
  applyFieldOverrides,
  cacheFieldDisplayNames,
  CoreApp,
  DataFrame,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  DataSourceInstanceSettings,
  DataSourcePlugin,
  dataFrameFromJSON,
  DataFrameJSON,
  dateTime,
  LoadingState,
  PluginType,
  rangeUtil,
  standardTransformers,
  standardTransformersRegistry,
  TimeRange,
  transformDataFrame,
} from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import {
  BackendSrv,
  BackendSrvRequest,
  DataSourceWithBackend,
  LiveDataStreamOptions,
  setBackendSrv,
  setDataSourceSrv,
  setGrafanaLiveSrv,
  setTemplateSrv,
} from '@grafana/runtime';
import { Icon, PanelChrome, ThemeContext } from '@grafana/ui';
import React from 'react';
import { createRoot, Root } from 'react-dom/client';
import * as rxjs from 'rxjs';

import { fieldConfigFor } from './fieldConfig';
import { hasData, NoData, Viz } from './viz';

import { loadPlugin, PLUGIN_URL } from '../shared/loadPlugin';

interface Range {
  from: number;
  to: number;
  rawFrom: string;
  rawTo: string;
}

interface Target {
  refId: string;
  expr?: string;
  datasource: { type: string; uid: string };
  [key: string]: unknown;
}

interface PanelJSON {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  timeFrom?: string;
  targets?: Target[];
  transformations?: Array<{ id: string; options: unknown }>;
  fieldConfig?: grafanaData.FieldConfigSource;
  options?: Record<string, any>;
}

interface FixturePanel {
  panel: PanelJSON;
  request?: { range: Range; intervalMs: number; maxDataPoints: number; queries: Target[] };
  response?: { results: Record<string, unknown> };
  notes?: string[];
}

interface Fixture {
  uid: string;
  title: string;
  generated: string;
  layout: { width: number; padding: number; cellHeight: number; margin: number };
  time: Range;
  timeZone: string;
  variables: Array<{
    name: string;
    type: string;
    multi: boolean;
    includeAll: boolean;
    allValue: string;
    all: boolean;
    values: string[] | null;
  }>;
  datasources: Array<{ uid: string; type: string; name: string; jsonData: Record<string, unknown> }>;
  panels: FixturePanel[];
}

/** What the browser check reads of each panel. */
interface PanelResult {
  id: number;
  type: string;
  title: string;
  state: 'row' | 'data' | 'nodata' | 'error';
  rows: number;
  error?: string;
}

declare global {
  interface Window {
    __panels?: PanelResult[];
    __panelsReady?: boolean;
    __panelsError?: string;
    __showDashboard?: (uid: string) => Promise<void>;
  }
}

function instanceSettings(ds: Fixture['datasources'][number], id: number): DataSourceInstanceSettings<any> {
  return {
    id,
    uid: ds.uid,
    type: ds.type,
    name: ds.name,
    access: 'proxy',
    readOnly: true,
    jsonData: ds.jsonData,
    meta: {
      id: ds.type,
      name: ds.type,
      type: PluginType.datasource,
      module: ds.type === 'logsift-datasource' ? PLUGIN_URL : '',
      baseUrl: '',
      info: {
        author: { name: '' },
        description: '',
        links: [],
        logos: { small: '', large: '' },
        screenshots: [],
        updated: '',
        version: '',
      },
    },
  };
}

/** The differences between the queries the frontend sent and the recorded ones. */
function compareQueries(sent: Array<Record<string, unknown>>, recorded: Target[]): string[] {
  const diffs: string[] = [];
  if (sent.length !== recorded.length) {
    diffs.push(`${sent.length} queries sent, ${recorded.length} recorded`);
  }
  for (const rec of recorded) {
    const q = sent.find((s) => s.refId === rec.refId);
    if (!q) {
      diffs.push(`query ${rec.refId} was not sent`);
      continue;
    }
    for (const key of ['expr', 'queryType', 'legendFormat', 'intervalMs', 'maxDataPoints']) {
      if (JSON.stringify(q[key]) !== JSON.stringify(rec[key])) {
        diffs.push(`${rec.refId}.${key}: sent ${JSON.stringify(q[key])}, recorded ${JSON.stringify(rec[key])}`);
      }
    }
    const dsUid = (q.datasource as { uid?: string } | undefined)?.uid;
    if (dsUid !== rec.datasource.uid) {
      diffs.push(`${rec.refId}.datasource: sent ${dsUid}, recorded ${rec.datasource.uid}`);
    }
  }
  return diffs;
}

/** Grafana's app registers the standard transformations; @grafana/data holds them. */
function registerTransformers() {
  // Some transformers are listed under two names (an alias and the id); the registry wants each
  // id once.
  const transformers = new Map(Object.values(standardTransformers).map((t) => [t.id, t]));
  standardTransformersRegistry.setInit(() =>
    [...transformers.values()].map((t) => ({
      id: t.id,
      name: t.name,
      description: t.description,
      transformation: () => Promise.resolve(t as grafanaData.DataTransformerInfo),
      editor: () => null,
      imageDark: '',
      imageLight: '',
    }))
  );
}

/** Grafana's services as one dashboard's page has them: its requests, variables and datasources. */
function setUpGrafana(fixture: Fixture) {
  const byPanel = new Map(fixture.panels.map((p) => [String(p.panel.id), p]));
  setBackendSrv({
    fetch: (req: BackendSrvRequest) => {
      const fail = (message: string) =>
        rxjs.throwError(() => ({ status: 400, data: { message }, config: req, statusText: message }));
      if (!req.url.startsWith('/api/ds/query')) {
        return fail(`this page answers only /api/ds/query, not ${req.url}`);
      }
      const panelId = (req.headers as Record<string, string> | undefined)?.['X-Panel-Id'] ?? '';
      const fp = byPanel.get(panelId);
      if (!fp?.request || !fp.response) {
        return fail(`no recorded request for panel ${panelId}`);
      }
      const body = req.data as { queries: Array<Record<string, unknown>>; from: string; to: string };
      const diffs = compareQueries(body.queries, fp.request.queries);
      if (body.from !== String(fp.request.range.from) || body.to !== String(fp.request.range.to)) {
        diffs.push(`range ${body.from}-${body.to}, recorded ${fp.request.range.from}-${fp.request.range.to}`);
      }
      if (diffs.length > 0) {
        return fail(`the request differs from the recorded one: ${diffs.join('; ')}`);
      }
      return rxjs.of({
        data: fp.response,
        status: 200,
        ok: true,
        config: req,
        headers: new Headers(),
        redirected: false,
        statusText: 'OK',
        type: 'basic',
        url: req.url,
      });
    },
  } as unknown as BackendSrv);

  // Grafana Live, for the queries the plugin subscribes to instead of posting (import progress):
  // the subscription is answered once with the frames the backend's QueryData gave for the same
  // query, which is the state a new subscriber is sent first, and then completes.
  setGrafanaLiveSrv({
    getDataStream: (opts: LiveDataStreamOptions) => {
      const [requestId, refId] = (opts.key ?? '').split('.');
      const fp = byPanel.get(requestId.replace(/^panel-/, ''));
      const recorded = fp?.response?.results[refId] as { frames?: DataFrameJSON[] } | undefined;
      const asked = fp?.request?.queries.find((q) => q.refId === refId);
      if (!recorded || !asked || opts.addr.scope !== 'ds' || opts.addr.stream !== asked.datasource.uid) {
        return rxjs.throwError(() => new Error(`no recorded answer for the Live channel ${JSON.stringify(opts.addr)}`));
      }
      return rxjs.of({
        key: opts.key,
        state: LoadingState.Streaming,
        data: (recorded.frames ?? []).map(dataFrameFromJSON),
      });
    },
    getStream: () => rxjs.EMPTY,
    getConnectionState: () => rxjs.of(true),
    getPresence: () => Promise.reject(new Error('no presence here')),
    publish: () => Promise.reject(new Error('no publishing here')),
  });

  // templateSrv.replace as Grafana's: a variable set to All with a custom all value gives that
  // value unformatted; otherwise the value (a list for multi-value variables) goes through the
  // format the caller passes. Built-in variables come from the request's scopedVars or stay.
  const vars = new Map(fixture.variables.map((v) => [v.name, v]));
  const ref = /\$\{([A-Za-z0-9_.]+)(?::([^}]*))?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_.]+)(?::([^\]]*))?\]\]/g;
  setTemplateSrv({
    getVariables: () => fixture.variables as never,
    replace: (target?: string, scopedVars?: grafanaData.ScopedVars, format?: string | Function) =>
      (target ?? '').replace(ref, (match, n1, _f1, n2, n3) => {
        const name = n1 ?? n2 ?? n3;
        const scoped = scopedVars?.[name];
        if (scoped) {
          return String(scoped.value);
        }
        const v = vars.get(name);
        if (!v) {
          return match;
        }
        if (v.all && v.allValue) {
          return v.allValue;
        }
        const values = v.values ?? [];
        const value = v.multi || v.includeAll ? values : (values[0] ?? '');
        if (typeof format === 'function') {
          return format(value, v, 'glob');
        }
        return Array.isArray(value) ? (value.length > 1 ? `{${value.join(',')}}` : (value[0] ?? '')) : value;
      }),
    containsTemplate: (t?: string) => /\$|\[\[/.test(t ?? ''),
    updateTimeRange: () => undefined,
  });
  const settings = fixture.datasources.map((ds, i) => instanceSettings(ds, i + 1));
  setDataSourceSrv({
    getInstanceSettings: (r?: string | { uid?: string } | null) =>
      settings.find((s) => s.uid === (typeof r === 'string' ? r : r?.uid)),
    getList: () => settings,
    get: () => Promise.reject(new Error('the page builds its datasources itself')),
    reload: () => Promise.resolve(),
    registerRuntimeDataSource: () => undefined,
  } as unknown as grafanaRuntime.DataSourceSrv);

  return settings;
}

interface PanelState {
  fp: FixturePanel;
  result: PanelResult;
  frames: DataFrame[];
  fieldConfig: grafanaData.FieldConfigSource;
  timeRange: TimeRange;
}

async function runPanel(
  fixture: Fixture,
  fp: FixturePanel,
  datasources: Map<string, DataSourceApi>,
  theme: grafanaData.GrafanaTheme2
): Promise<PanelState> {
  const { panel } = fp;
  const range = fp.request?.range ?? fixture.time;
  const timeRange: TimeRange = {
    from: dateTime(range.from),
    to: dateTime(range.to),
    raw: { from: range.rawFrom, to: range.rawTo },
  };
  const result: PanelResult = { id: panel.id, type: panel.type, title: panel.title, state: 'row', rows: 0 };
  const empty = { fp, result, frames: [], fieldConfig: { defaults: {}, overrides: [] }, timeRange };
  if (panel.type === 'row') {
    return empty;
  }
  try {
    const targets = panel.targets ?? [];
    const ds = datasources.get(targets[0]?.datasource.uid);
    if (!ds || !fp.request) {
      throw new Error(`panel ${panel.id} has no datasource or no recorded request`);
    }
    const { intervalMs, maxDataPoints } = fp.request;
    const interval = rangeUtil.secondsToHms(intervalMs / 1000);
    const request: DataQueryRequest<any> = {
      requestId: `panel-${panel.id}`,
      app: CoreApp.Dashboard,
      dashboardUID: fixture.uid,
      dashboardTitle: fixture.title,
      panelId: panel.id,
      panelName: panel.title,
      panelPluginId: panel.type,
      interval,
      intervalMs,
      maxDataPoints,
      range: timeRange,
      scopedVars: {
        __interval: { text: interval, value: interval },
        __interval_ms: { text: String(intervalMs), value: intervalMs },
      },
      targets,
      timezone: fixture.timeZone,
      startTime: Date.now(),
      filters: [],
    };
    const responses: DataQueryResponse[] = await rxjs.lastValueFrom(
      (ds.query(request) as rxjs.Observable<DataQueryResponse>).pipe(rxjs.toArray())
    );
    const errors = responses.flatMap((r) => r.errors ?? (r.error ? [r.error] : []));
    if (errors.length > 0) {
      throw new Error(errors.map((e) => e.message ?? JSON.stringify(e)).join('; '));
    }
    let frames: DataFrame[] = responses.flatMap((r) => r.data as DataFrame[]);
    if (panel.transformations?.length) {
      frames = await rxjs.lastValueFrom(transformDataFrame(panel.transformations as never, frames));
    }
    const { registry, fieldConfig } = fieldConfigFor(panel.type, panel.fieldConfig);
    if (panel.type !== 'logs') {
      frames = applyFieldOverrides({
        data: frames,
        fieldConfig,
        fieldConfigRegistry: registry,
        replaceVariables: (s: string) => s,
        theme,
        timeZone: fixture.timeZone,
      });
      // applyFieldOverrides clears the cached display names; the panels read them (a table's
      // headers show a renamed field's new name only from there).
      cacheFieldDisplayNames(frames);
    }
    result.rows = frames.reduce((n, f) => n + f.length, 0);
    result.state = hasData(frames) ? 'data' : 'nodata';
    return { fp, result, frames, fieldConfig, timeRange };
  } catch (e) {
    result.state = 'error';
    result.error = String((e as Error)?.message ?? e);
    return empty;
  }
}

function DashboardView({
  fixture,
  panels,
  theme,
}: {
  fixture: Fixture;
  panels: PanelState[];
  theme: grafanaData.GrafanaTheme2;
}) {
  const { width, padding, cellHeight, margin } = fixture.layout;
  const col = (width - 2 * padding - 23 * margin) / 24;
  const px = (w: number) => Math.round(col * w + margin * (w - 1));
  const height = Math.max(...panels.map((p) => p.fp.panel.gridPos.y + p.fp.panel.gridPos.h)) * (cellHeight + margin);
  const range = rangeUtil.describeTimeRange({ from: fixture.time.rawFrom, to: fixture.time.rawTo });
  return (
    <div style={{ width, padding: `0 ${padding}px ${padding}px` }}>
      <header
        data-testid="dashboard-header"
        style={{ display: 'flex', alignItems: 'center', gap: 16, height: 48, fontSize: 16, flexWrap: 'nowrap' }}
      >
        <span style={{ fontWeight: 500 }}>{fixture.title}</span>
        {fixture.variables
          .filter((v) => v.type !== 'adhoc')
          .map((v) => (
            <span key={v.name} style={{ fontSize: 13, color: theme.colors.text.secondary }}>
              {v.name}{' '}
              <span
                style={{
                  color: theme.colors.text.primary,
                  border: `1px solid ${theme.colors.border.medium}`,
                  borderRadius: 2,
                  padding: '2px 8px',
                }}
              >
                {v.all ? 'All' : (v.values ?? []).join(' + ') || '""'}
              </span>
            </span>
          ))}
        <span style={{ marginLeft: 'auto', fontSize: 13, display: 'flex', alignItems: 'center', gap: 4 }}>
          <Icon name="clock-nine" />
          {range}
        </span>
      </header>
      <div style={{ position: 'relative', height }}>
        {panels.map(({ fp, result, frames, fieldConfig, timeRange }) => {
          const { panel } = fp;
          const g = panel.gridPos;
          const style: React.CSSProperties = {
            position: 'absolute',
            left: g.x * (col + margin),
            top: g.y * (cellHeight + margin),
            width: px(g.w),
            height: g.h * cellHeight + (g.h - 1) * margin,
          };
          const attrs = {
            'data-testid': 'panel',
            'data-panel-id': panel.id,
            'data-panel-type': panel.type,
            'data-state': result.state,
          };
          if (panel.type === 'row') {
            return (
              <div
                key={panel.id}
                {...attrs}
                style={{ ...style, display: 'flex', alignItems: 'center', gap: 4, fontSize: 16, fontWeight: 500 }}
              >
                <Icon name="angle-down" />
                {panel.title}
              </div>
            );
          }
          const override = panel.timeFrom ? rangeUtil.describeTextRange(`now-${panel.timeFrom}`).display : undefined;
          return (
            <div key={panel.id} {...attrs} data-error={result.error} style={style}>
              <PanelChrome
                width={style.width as number}
                height={style.height as number}
                title={panel.title}
                description={panel.description}
                loadingState={result.state === 'error' ? LoadingState.Error : LoadingState.Done}
                statusMessage={result.error}
                titleItems={
                  override ? (
                    <span
                      style={{
                        fontSize: 12,
                        color: theme.colors.text.link,
                        display: 'flex',
                        gap: 4,
                        alignItems: 'center',
                      }}
                    >
                      <Icon name="clock-nine" size="sm" />
                      {override}
                    </span>
                  ) : undefined
                }
              >
                {(w, h) =>
                  result.state === 'data' ? (
                    <Viz
                      type={panel.type}
                      frames={frames}
                      fieldConfig={fieldConfig}
                      options={panel.options ?? {}}
                      width={w}
                      height={h}
                      timeRange={timeRange}
                      timeZone={fixture.timeZone}
                      theme={theme}
                    />
                  ) : (
                    <NoData text={result.state === 'error' ? result.error : 'No data'} />
                  )
                }
              </PanelChrome>
            </div>
          );
        })}
      </div>
    </div>
  );
}

/** Draws one dashboard in place of the one before. */
async function show(
  uid: string,
  plugin: DataSourcePlugin<any, any, any, any>,
  theme: grafanaData.GrafanaTheme2,
  root: Root
) {
  window.__panelsReady = false;
  window.__panelsError = undefined;
  window.__panels = undefined;
  const res = await fetch(`/tests/browser/panels/data/${encodeURIComponent(uid)}.json`);
  if (!res.ok) {
    throw new Error(`no fixture for dashboard ${uid}: HTTP ${res.status}`);
  }
  const fixture = (await res.json()) as Fixture;
  fixture.variables ??= [];
  const settings = setUpGrafana(fixture);
  const datasources = new Map<string, DataSourceApi>();
  for (const s of settings) {
    if (s.type === 'logsift-datasource') {
      datasources.set(s.uid, new plugin.DataSourceClass(s));
    } else if (s.type === 'prometheus') {
      // Grafana's Prometheus frontend posts to /api/ds/query through DataSourceWithBackend too.
      datasources.set(s.uid, new DataSourceWithBackend(s));
    }
  }
  const panels = await Promise.all(fixture.panels.map((fp) => runPanel(fixture, fp, datasources, theme)));
  root.render(
    <ThemeContext.Provider value={theme}>
      <DashboardView key={fixture.uid} fixture={fixture} panels={panels} theme={theme} />
    </ThemeContext.Provider>
  );
  // Two frames: React commits, then uPlot and the canvases draw.
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  window.__panels = panels.map((p) => p.result);
  window.__panelsReady = true;
}

/**
 * Loads the plugin once; `window.__showDashboard(uid)` then draws a dashboard (the browser check
 * draws each in turn on one page), and `?dashboard=<uid>` draws one on load.
 */
async function main() {
  registerTransformers();
  const { plugin } = await loadPlugin(PLUGIN_URL);
  const theme = grafanaData.createTheme({ colors: { mode: 'dark' } });
  Object.assign(document.body.style, {
    margin: '0',
    background: theme.colors.background.canvas,
    color: theme.colors.text.primary,
    fontFamily: theme.typography.fontFamily,
    fontSize: `${theme.typography.fontSize}px`,
  });
  const root = createRoot(document.getElementById('root')!);
  window.__showDashboard = (uid: string) =>
    show(uid, plugin, theme, root).catch((e) => {
      window.__panelsError = String(e?.stack ?? e);
      console.error(e);
    });
  const uid = new URLSearchParams(window.location.search).get('dashboard');
  if (uid) {
    await window.__showDashboard(uid);
  }
}

main().catch((e) => {
  window.__panelsError = String(e?.stack ?? e);
  console.error(e);
});
