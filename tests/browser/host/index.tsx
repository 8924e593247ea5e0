/**
 * A stand-in for Grafana in the browser check: it provides the modules Grafana shares with
 * plugins, loads the built dist/module.js the way Grafana does (an AMD module with those
 * modules as externals), and mounts the plugin's editors against a mocked backend.
 */
import * as grafanaData from '@grafana/data';
import {
  CoreApp,
  DataSourceInstanceSettings,
  DataSourcePlugin,
  DataSourceSettings,
  dateTime,
  PluginType,
} from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import { BackendSrv, BackendSrvRequest, setBackendSrv, setDataSourceSrv, setTemplateSrv } from '@grafana/runtime';
import { ThemeContext } from '@grafana/ui';
import * as monaco from 'monaco-editor';
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';
import * as rxjs from 'rxjs';

import { loadPlugin, PLUGIN_URL } from '../shared/loadPlugin';

declare global {
  interface Window {
    __monaco: typeof monaco;
    __requests: Array<{ path: string; params: unknown }>;
    __hostReady?: boolean;
    __hostError?: string;
  }
}

window.__monaco = monaco;
window.MonacoEnvironment = { getWorkerUrl: () => '/tests/browser/.build/editor.worker.js' };

// ---- the mocked backend ------------------------------------------------------------------------

const LABELS: Record<string, string[]> = {
  job: ['api', 'web', 'payments', 'billing'],
  env: ['prod', 'staging'],
  level: ['error', 'warn', 'info', 'debug'],
  host: ['web-1', 'web-2'],
};

window.__requests = [];

const ERROR_QUERY = 'sum(rate({job="api"} |= "timeout" [5x]))';
const PARSE_ERRORS: Record<string, string> = {
  [ERROR_QUERY]: 'parse error at line 1, col 36: syntax error: invalid number, duration or byte size "5x"',
};

function route(path: string, params: Record<string, string>): { status: number; data: unknown } {
  if (path === 'labels') {
    return { status: 200, data: { data: Object.keys(LABELS) } };
  }
  const values = /^label\/([^/]+)\/values$/.exec(path);
  if (values) {
    return { status: 200, data: { data: LABELS[decodeURIComponent(values[1])] ?? [] } };
  }
  if (path === 'workspaces') {
    return { status: 200, data: { data: ['case-4711', 'hosts'] } };
  }
  if (path === 'cost') {
    return {
      status: 200,
      data: {
        streams: 3,
        chunks: 14,
        entries: 120000,
        bytes: 3_400_000,
        bytesHuman: '3.2 MiB',
        summary: 'at most 3.2 MiB in 120000 lines, 14 chunks, 3 streams (line filters may skip most chunks)',
      },
    };
  }
  if (path === 'format') {
    // Error messages as logsift's parser writes them for these queries (pkg/logql), passed
    // through by the backend as {"error", "message"} with status 400.
    const message = PARSE_ERRORS[params.expr ?? ''];
    if (message) {
      return { status: 400, data: { error: message, message } };
    }
    return { status: 200, data: { expr: params.expr ?? '' } };
  }
  return { status: 404, data: { message: `no resource ${path}` } };
}

const backendSrv = {
  fetch: (req: BackendSrvRequest) => {
    const prefix = '/api/datasources/uid/logsift-test/resources/';
    const path = req.url.startsWith(prefix) ? req.url.slice(prefix.length) : req.url;
    const params = (req.params ?? {}) as Record<string, string>;
    window.__requests.push({ path, params });
    const res = route(path, params);
    if (res.status >= 400) {
      return rxjs.throwError(() => ({ status: res.status, data: res.data, config: req }));
    }
    return rxjs.of({
      status: res.status,
      data: res.data,
      ok: true,
      config: req,
      headers: new Headers(),
      redirected: false,
      statusText: 'OK',
      type: 'basic',
      url: req.url,
    });
  },
};
setBackendSrv(backendSrv as unknown as BackendSrv);
setTemplateSrv({
  getVariables: () => [{ name: 'job' }] as never,
  replace: (t?: string) => t ?? '',
  containsTemplate: (t?: string) => /\$/.test(t ?? ''),
  updateTimeRange: () => undefined,
});
setDataSourceSrv({
  getInstanceSettings: () => undefined,
  getList: () => [],
  get: () => Promise.reject(new Error('no datasources here')),
  reload: () => Promise.resolve(),
  registerRuntimeDataSource: () => undefined,
} as unknown as grafanaRuntime.DataSourceSrv);

// ---- the page ----------------------------------------------------------------------------------

const instanceSettings: DataSourceInstanceSettings<any> = {
  uid: 'logsift-test',
  type: 'logsift-datasource',
  name: 'logsift',
  access: 'proxy',
  readOnly: false,
  jsonData: { maxLines: 1000 },
  meta: {
    id: 'logsift-datasource',
    name: 'logsift',
    type: PluginType.datasource,
    module: PLUGIN_URL,
    baseUrl: '/dist',
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

const range = {
  from: dateTime('2024-05-01T10:00:00Z'),
  to: dateTime('2024-05-01T11:00:00Z'),
  raw: { from: 'now-1h', to: 'now' },
};

function Section({ id, title, children }: { id: string; title: string; children: React.ReactNode }) {
  return (
    <section
      data-testid={id}
      style={{ padding: 16, marginBottom: 16, border: '1px solid rgba(204,204,220,0.15)', borderRadius: 4 }}
    >
      <h3 style={{ marginTop: 0 }}>{title}</h3>
      {children}
    </section>
  );
}

function QueryEditorHost({
  plugin,
  ds,
  initial,
  app,
}: {
  plugin: DataSourcePlugin<any, any, any, any>;
  ds: unknown;
  initial: object;
  app: CoreApp;
}) {
  const [query, setQuery] = useState({ refId: 'A', ...initial });
  const Editor = plugin.components.QueryEditor!;
  return (
    <>
      <Editor
        datasource={ds as never}
        query={query}
        onChange={setQuery}
        onRunQuery={() => undefined}
        range={range}
        app={app}
      />
      <pre data-testid="query-json" style={{ fontSize: 11, opacity: 0.7 }}>
        {JSON.stringify(query)}
      </pre>
    </>
  );
}

function VariableEditorHost({ ds }: { ds: { variables?: { editor?: React.ComponentType<any> } } }) {
  const [query, setQuery] = useState<object>({ refId: 'V', type: 'labelValues', label: 'job', stream: '{env="prod"}' });
  const Editor = ds.variables?.editor;
  if (!Editor) {
    return <p data-testid="no-variable-editor">the datasource has no variable editor</p>;
  }
  return (
    <>
      <Editor datasource={ds} query={query} onChange={setQuery} onRunQuery={() => undefined} range={range} />
      <pre data-testid="query-json" style={{ fontSize: 11, opacity: 0.7 }}>
        {JSON.stringify(query)}
      </pre>
    </>
  );
}

function ConfigEditorHost({ plugin }: { plugin: DataSourcePlugin<any, any, any, any> }) {
  const [options, setOptions] = useState<DataSourceSettings<any, any>>(
    () =>
      ({
        id: 1,
        uid: 'logsift-test',
        orgId: 1,
        name: 'logsift',
        type: 'logsift-datasource',
        typeName: 'logsift',
        typeLogoUrl: '',
        access: 'proxy',
        url: 'http://logsift:3100',
        user: '',
        basicAuth: false,
        basicAuthUser: '',
        isDefault: false,
        readOnly: false,
        withCredentials: false,
        jsonData: {
          tenant: 'acme',
          timeoutSeconds: 30,
          maxLines: 5000,
          derivedFields: [
            {
              name: 'TraceID',
              matcherType: 'regex',
              matcherRegex: 'traceID=(\\w+)',
              url: 'https://tracing.example/trace/${__value.raw}',
            },
          ],
        },
        secureJsonFields: { apiToken: true },
        // Built without the deprecated fields Grafana still declares (database).
      }) as unknown as DataSourceSettings<any, any>
  );
  const Editor = plugin.components.ConfigEditor!;
  return <Editor options={options} onOptionsChange={setOptions} />;
}

async function main() {
  const { plugin } = await loadPlugin(PLUGIN_URL);
  const ds = new plugin.DataSourceClass(instanceSettings);
  const theme = grafanaData.createTheme({ colors: { mode: 'dark' } });
  // Grafana's GlobalStyles would fetch its web fonts from public/fonts; the page's basics are enough here.
  Object.assign(document.body.style, {
    margin: '0',
    background: theme.colors.background.canvas,
    color: theme.colors.text.primary,
    fontFamily: theme.typography.fontFamily,
    fontSize: `${theme.typography.fontSize}px`,
  });
  createRoot(document.getElementById('root')!).render(
    <ThemeContext.Provider value={theme}>
      <div style={{ maxWidth: 1100, margin: '0 auto', padding: 16 }}>
        <Section id="section-code" title="Code mode">
          <QueryEditorHost
            plugin={plugin}
            ds={ds}
            app={CoreApp.Explore}
            initial={{
              editorMode: 'code',
              workspace: 'case-4711',
              expr: 'sum by (level) (count_over_time({job="api", env="prod"} |= "timeout" | json [$__auto]))',
            }}
          />
        </Section>
        <Section id="section-error" title="Code mode: a parse error">
          <QueryEditorHost
            plugin={plugin}
            ds={ds}
            app={CoreApp.Explore}
            initial={{ editorMode: 'code', expr: ERROR_QUERY }}
          />
        </Section>
        <Section id="section-completion" title="Code mode: completion">
          <QueryEditorHost
            plugin={plugin}
            ds={ds}
            app={CoreApp.Explore}
            initial={{ editorMode: 'code', expr: '{job="api", ' }}
          />
        </Section>
        <Section id="section-builder" title="Builder mode">
          <QueryEditorHost
            plugin={plugin}
            ds={ds}
            app={CoreApp.Dashboard}
            initial={{
              editorMode: 'builder',
              workspace: 'case-4711',
              expr: '{job="api", env="prod"} |= "timeout" | logfmt | level="error"',
            }}
          />
        </Section>
        <Section id="section-variable" title="Template variable editor">
          <VariableEditorHost ds={ds as never} />
        </Section>
        <Section id="section-config" title="Config editor">
          <ConfigEditorHost plugin={plugin} />
        </Section>
      </div>
    </ThemeContext.Provider>
  );
  window.__hostReady = true;
}

main().catch((e) => {
  window.__hostError = String(e?.stack ?? e);
  console.error(e);
});
