import {
  DataQueryRequest,
  DataSourceInstanceSettings,
  dateTime,
  PluginType,
  ScopedVars,
  TimeRange,
  TypedVariableModel,
} from '@grafana/data';
import { BackendSrv, BackendSrvRequest, setBackendSrv, setTemplateSrv, TemplateSrv } from '@grafana/runtime';
import { Observable, of, throwError } from 'rxjs';

import { LogsiftDatasource } from '../datasource';
import { LogsiftOptions, LogsiftQuery } from '../types';

export function instanceSettings(jsonData: LogsiftOptions = {}): DataSourceInstanceSettings<LogsiftOptions> {
  return {
    uid: 'logsift-uid',
    type: 'logsift-datasource',
    name: 'logsift',
    access: 'proxy',
    readOnly: false,
    jsonData,
    meta: {
      id: 'logsift-datasource',
      name: 'logsift',
      type: PluginType.datasource,
      module: '',
      baseUrl: '',
      info: {
        author: { name: 'logsift' },
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

export const RANGE: TimeRange = {
  from: dateTime(1_700_000_000_000),
  to: dateTime(1_700_003_600_000),
  raw: { from: 'now-1h', to: 'now' },
};

export interface FakeResponse {
  status?: number;
  data: unknown;
}

/** A BackendSrv whose fetch answers from `route` and records every request. */
export function fakeBackend(route: (req: BackendSrvRequest) => FakeResponse) {
  const requests: BackendSrvRequest[] = [];
  const fetch = (req: BackendSrvRequest): Observable<unknown> => {
    requests.push(req);
    const res = route(req);
    if ((res.status ?? 200) >= 400) {
      return throwError(() => ({ status: res.status, data: res.data, config: req }));
    }
    return of({
      status: res.status ?? 200,
      data: res.data,
      ok: true,
      config: req,
      headers: new Headers(),
      redirected: false,
      statusText: 'OK',
      type: 'basic',
      url: req.url,
    });
  };
  setBackendSrv({ fetch } as unknown as BackendSrv);
  return requests;
}

/** A TemplateSrv that knows a few variables; values may be arrays (multi-value). */
export function fakeTemplateSrv(vars: Record<string, { value: string | string[]; multi?: boolean }> = {}) {
  const srv: TemplateSrv = {
    getVariables: () => Object.keys(vars).map((name) => ({ name }) as unknown as TypedVariableModel),
    containsTemplate: (t?: string) => /\$\w+|\$\{/.test(t ?? ''),
    updateTimeRange: () => undefined,
    replace: (target?: string, scopedVars?: ScopedVars, format?: string | Function) =>
      (target ?? '').replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (ref, a, b) => {
        const name = a ?? b;
        const scoped = scopedVars?.[name];
        if (scoped) {
          return String(scoped.value);
        }
        const v = vars[name];
        if (!v) {
          return ref;
        }
        return typeof format === 'function' ? format(v.value, { multi: v.multi, includeAll: false }) : String(v.value);
      }),
  };
  setTemplateSrv(srv);
  return srv;
}

export function newDatasource(jsonData: LogsiftOptions = {}) {
  return new LogsiftDatasource(instanceSettings(jsonData));
}

export function request(
  targets: LogsiftQuery[],
  extra: Partial<DataQueryRequest<LogsiftQuery>> = {}
): DataQueryRequest<LogsiftQuery> {
  return {
    requestId: 'req-1',
    interval: '1m',
    intervalMs: 60_000,
    range: RANGE,
    scopedVars: {},
    targets,
    timezone: 'UTC',
    app: 'explore',
    startTime: 0,
    ...extra,
  };
}
