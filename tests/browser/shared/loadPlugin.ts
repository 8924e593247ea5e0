/**
 * Loads the built plugin (dist/module.js) the way Grafana does: an AMD module whose externals are the
 * modules Grafana shares with plugins. Both browser pages (the editors' host and the dashboards'
 * panels) use it, so that they load the plugin alike.
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import { DataSourcePlugin } from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import * as lodash from 'lodash';
import React from 'react';
import * as jsxRuntime from 'react/jsx-runtime';
import * as ReactDOM from 'react-dom';
import * as rxjs from 'rxjs';

declare global {
  interface Window {
    define?: ((deps: string[], factory: (...args: unknown[]) => unknown) => void) & { amd?: unknown };
  }
}

export const PLUGIN_URL = '/dist/module.js';

/** The modules Grafana hands to plugins; names as the create-plugin webpack externals list them. */
const shared: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react/jsx-runtime': jsxRuntime,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
  '@emotion/css': emotionCss,
  rxjs,
  lodash,
  module: { uri: PLUGIN_URL },
};

/** Loads an AMD module the way Grafana's SystemJS does, resolving its dependencies from `shared`. */
export function loadPlugin(url: string): Promise<{ plugin: DataSourcePlugin<any, any, any, any> }> {
  return new Promise((resolve, reject) => {
    const define = (deps: string[], factory: (...args: unknown[]) => unknown) => {
      try {
        const exportsObj = {};
        const args = deps.map((d) => {
          if (d === 'exports') {
            return exportsObj;
          }
          if (!(d in shared)) {
            throw new Error(`plugin needs module "${d}" that Grafana would not provide`);
          }
          return shared[d];
        });
        const result = factory(...args);
        resolve((result ?? exportsObj) as { plugin: DataSourcePlugin<any, any, any, any> });
      } catch (e) {
        reject(e);
      }
    };
    define.amd = {};
    window.define = define;
    const script = document.createElement('script');
    script.src = url;
    script.onerror = () => reject(new Error(`cannot load ${url}`));
    document.head.appendChild(script);
  });
}
