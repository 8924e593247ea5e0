import { css } from '@emotion/css';
import {
  DataSourcePluginOptionsEditorProps,
  GrafanaTheme2,
  onUpdateDatasourceJsonDataOption,
  onUpdateDatasourceSecureJsonDataOption,
  updateDatasourcePluginResetOption,
} from '@grafana/data';
import { Divider, Field, FieldSet, Input, SecretInput, SecretTextArea, Switch, Text, useStyles2 } from '@grafana/ui';
import React, { ChangeEvent } from 'react';

import { DEFAULT_MAX_LINES, DerivedFieldConfig, LogsiftOptions, LogsiftSecureJsonData } from '../types';
import { DerivedFieldsEditor } from './DerivedFieldsEditor';

export type Props = DataSourcePluginOptionsEditorProps<LogsiftOptions, LogsiftSecureJsonData>;

// The backend's defaults and bounds (datasource/plugin/settings.go); it refuses settings outside them.
const DEFAULT_TIMEOUT_SECONDS = 60;
const MAX_TIMEOUT_SECONDS = 1800;
const MAX_MAX_LINES = 1_000_000;

/**
 * Settings of a logsift datasource. Secrets (API token, CA certificate) are write-only as in
 * every Grafana datasource: once saved the browser only learns that they are configured, and
 * "Reset" clears them.
 */
export function ConfigEditor(props: Props) {
  const { options, onOptionsChange } = props;
  const styles = useStyles2(getStyles);
  const jsonData = options.jsonData ?? {};
  const secureFields = options.secureJsonFields ?? {};
  const secure = options.secureJsonData ?? {};

  const setJson = <K extends keyof LogsiftOptions>(key: K, value: LogsiftOptions[K]) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: value } });

  const numberOption = (key: 'timeoutSeconds' | 'maxLines') => (e: ChangeEvent<HTMLInputElement>) => {
    const n = Math.floor(Number(e.currentTarget.value));
    setJson(key, e.currentTarget.value === '' || !Number.isFinite(n) || n <= 0 ? undefined : n);
  };

  const urlInvalid = Boolean(options.url) && !/^https?:\/\/[^\s]+$/.test(options.url);
  const timeoutInvalid = (jsonData.timeoutSeconds ?? 0) > MAX_TIMEOUT_SECONDS;
  const maxLinesInvalid = (jsonData.maxLines ?? 0) > MAX_MAX_LINES;
  const caMissing = Boolean(jsonData.tlsAuthWithCACert) && !secureFields.tlsCACert && !secure.tlsCACert?.trim();

  return (
    <div className={styles.editor} data-testid="logsift-config-editor">
      <FieldSet label="Connection">
        <Field
          label="URL"
          description="The logsift server's HTTP address, as Grafana's server reaches it."
          required
          invalid={urlInvalid}
          error={urlInvalid ? 'An http:// or https:// URL' : undefined}
        >
          <Input
            id="logsift-url"
            width={48}
            placeholder="http://localhost:3100"
            value={options.url ?? ''}
            onChange={(e) => onOptionsChange({ ...options, url: e.currentTarget.value.trim() })}
          />
        </Field>
        <Field label="Tenant" description="Sent as X-Scope-OrgID. Leave empty when the API token names the tenant.">
          <Input
            id="logsift-tenant"
            width={32}
            placeholder="single tenant"
            value={jsonData.tenant ?? ''}
            onChange={onUpdateDatasourceJsonDataOption(props, 'tenant')}
          />
        </Field>
        <Field
          label="API token"
          description="Sent as a bearer token. Stored encrypted; never shown again after saving."
        >
          <SecretInput
            id="logsift-api-token"
            width={48}
            placeholder="token"
            isConfigured={Boolean(secureFields.apiToken)}
            value={secure.apiToken ?? ''}
            onChange={onUpdateDatasourceSecureJsonDataOption(props, 'apiToken')}
            onReset={() => updateDatasourcePluginResetOption(props, 'apiToken')}
          />
        </Field>
      </FieldSet>

      <FieldSet label="TLS">
        <Field label="Skip TLS certificate verification" description="Only for testing: accepts any certificate.">
          <Switch
            id="logsift-tls-skip-verify"
            value={Boolean(jsonData.tlsSkipVerify)}
            onChange={(e) => setJson('tlsSkipVerify', e.currentTarget.checked)}
          />
        </Field>
        <Field label="With CA certificate" description="Verify the server with your own certificate authority.">
          <Switch
            id="logsift-tls-ca"
            value={Boolean(jsonData.tlsAuthWithCACert)}
            onChange={(e) => setJson('tlsAuthWithCACert', e.currentTarget.checked)}
          />
        </Field>
        {jsonData.tlsAuthWithCACert && (
          <Field
            label="CA certificate"
            description="PEM, beginning with -----BEGIN CERTIFICATE-----"
            invalid={caMissing}
            error={caMissing ? 'Needed to verify the server with your own certificate authority' : undefined}
          >
            <SecretTextArea
              id="logsift-tls-ca-cert"
              cols={60}
              rows={6}
              placeholder="-----BEGIN CERTIFICATE-----"
              isConfigured={Boolean(secureFields.tlsCACert)}
              value={secure.tlsCACert ?? ''}
              onChange={onUpdateDatasourceSecureJsonDataOption(props, 'tlsCACert')}
              onReset={() => updateDatasourcePluginResetOption(props, 'tlsCACert')}
            />
          </Field>
        )}
      </FieldSet>

      <FieldSet label="Queries">
        <Field
          label="Timeout"
          description="Seconds a query may run before it is cancelled."
          invalid={timeoutInvalid}
          error={timeoutInvalid ? `At most ${MAX_TIMEOUT_SECONDS} seconds` : undefined}
        >
          <Input
            id="logsift-timeout"
            type="number"
            min={1}
            max={MAX_TIMEOUT_SECONDS}
            width={12}
            placeholder={String(DEFAULT_TIMEOUT_SECONDS)}
            suffix="s"
            value={jsonData.timeoutSeconds ?? ''}
            onChange={numberOption('timeoutSeconds')}
          />
        </Field>
        <Field
          label="Maximum lines"
          description="Lines a log query returns when the query sets no line limit."
          invalid={maxLinesInvalid}
          error={maxLinesInvalid ? `At most ${MAX_MAX_LINES.toLocaleString('en-US')}` : undefined}
        >
          <Input
            id="logsift-max-lines"
            type="number"
            min={1}
            max={MAX_MAX_LINES}
            width={12}
            placeholder={String(DEFAULT_MAX_LINES)}
            value={jsonData.maxLines ?? ''}
            onChange={numberOption('maxLines')}
          />
        </Field>
      </FieldSet>

      <Divider />
      <FieldSet label="Derived fields">
        <Text color="secondary" element="p">
          Turn a part of each log line, or one of its labels, into a link: to a trace in a tracing datasource or to any
          URL. Use <code>{'${__value.raw}'}</code> where the value goes.
        </Text>
        <DerivedFieldsEditor
          value={jsonData.derivedFields ?? []}
          onChange={(derivedFields: DerivedFieldConfig[]) => setJson('derivedFields', derivedFields)}
        />
      </FieldSet>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  editor: css({
    maxWidth: theme.breakpoints.values.lg,
  }),
});
