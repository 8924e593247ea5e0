import { css } from '@emotion/css';
import { CoreApp, GrafanaTheme2, QueryEditorProps } from '@grafana/data';
import { InlineField, Input, RadioButtonGroup, Stack, Text, useStyles2 } from '@grafana/ui';
import React from 'react';

import { LogsiftDatasource } from '../datasource';
import { parseQuery } from '../logql/builder';
import { isMetricQuery } from '../logql/modify';
import { EditorMode, LogsiftDirection, LogsiftFormat, LogsiftOptions, LogsiftQuery, LogsiftQueryType } from '../types';
import { CostEstimate } from './CostEstimate';
import { LogQLCodeEditor } from './LogQLCodeEditor';
import { QueryBuilder } from './QueryBuilder';
import { WorkspacePicker } from './WorkspacePicker';

export type Props = QueryEditorProps<LogsiftDatasource, LogsiftQuery, LogsiftOptions>;

const MODES = [
  { value: 'builder' as EditorMode, label: 'Builder' },
  { value: 'code' as EditorMode, label: 'Code' },
];

const QUERY_TYPES = [
  { value: 'range' as LogsiftQueryType, label: 'Range', description: 'Lines or a series over the time range' },
  {
    value: 'instant' as LogsiftQueryType,
    label: 'Instant',
    description: 'A metric query evaluated once, at the end of the range',
  },
  {
    value: 'stream' as LogsiftQueryType,
    label: 'Stream',
    description: 'Results pushed as they are found, with progress',
  },
  {
    value: 'imports' as LogsiftQueryType,
    label: 'Import progress',
    description: 'Workspace import runs, live: files and bytes done, lines, throughput, errors',
  },
];

const DIRECTIONS = [
  { value: 'backward' as LogsiftDirection, label: 'Newest first' },
  { value: 'forward' as LogsiftDirection, label: 'Oldest first' },
];

const FORMATS = [
  { value: 'time_series' as LogsiftFormat, label: 'Time series' },
  { value: 'table' as LogsiftFormat, label: 'Table' },
];

/** The query editor: builder or code mode, workspace, query type, options, and the cost estimate. */
export function QueryEditor(props: Props) {
  const { datasource, query, onChange, onRunQuery, range, app } = props;
  const styles = useStyles2(getStyles);
  const mode: EditorMode =
    query.editorMode ?? (query.expr && parseQuery(query.expr) === undefined ? 'code' : 'builder');
  const metric = isMetricQuery(query.expr ?? '');
  const imports = query.queryType === 'imports';

  const change = (patch: Partial<LogsiftQuery>, run = false) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  return (
    <div className={styles.editor} data-testid="logsift-query-editor">
      <Stack gap={1} alignItems="center" wrap="wrap" justifyContent="space-between">
        <Stack gap={1} alignItems="center" wrap="wrap">
          <WorkspacePicker
            datasource={datasource}
            value={query.workspace}
            range={range}
            onChange={(workspace) => change({ workspace }, true)}
          />
          <RadioButtonGroup
            aria-label="Query type"
            size="sm"
            options={QUERY_TYPES}
            value={query.queryType ?? 'range'}
            onChange={(queryType) => change({ queryType }, true)}
          />
          {!imports && <CostEstimate datasource={datasource} query={query} range={range} />}
        </Stack>
        {!imports && (
          <RadioButtonGroup
            aria-label="Editor mode"
            size="sm"
            options={MODES}
            value={mode}
            onChange={(editorMode) => change({ editorMode })}
          />
        )}
      </Stack>

      {imports ? (
        <Text color="secondary" data-testid="imports-help">
          {query.workspace
            ? `Import runs of ${query.workspace}`
            : 'Import runs of every workspace (pick one to narrow it)'}
          : those running and those updated in the time range, one row per run, updated live as agents report.
        </Text>
      ) : mode === 'builder' ? (
        <QueryBuilder
          datasource={datasource}
          expr={query.expr ?? ''}
          range={range}
          workspace={query.workspace}
          onChange={(expr) => change({ expr, editorMode: 'builder' })}
          onSwitchToCode={() => change({ editorMode: 'code' })}
        />
      ) : (
        <LogQLCodeEditor
          datasource={datasource}
          value={query.expr ?? ''}
          range={range}
          workspace={query.workspace}
          onChange={(expr) => {
            if (expr !== query.expr) {
              change({ expr, editorMode: 'code' });
            }
          }}
          onRunQuery={onRunQuery}
        />
      )}
      {!imports && mode === 'builder' && query.expr && (
        <pre className={styles.preview} data-testid="builder-preview">
          {query.expr}
        </pre>
      )}

      <Stack gap={1} alignItems="center" wrap="wrap">
        {!metric && !imports && (
          <>
            <InlineField label="Line limit" tooltip="Most lines returned; empty uses the datasource default">
              <Input
                aria-label="Line limit"
                type="number"
                width={10}
                min={1}
                defaultValue={query.maxLines}
                placeholder={String(datasource.defaultMaxLines())}
                onBlur={(e) => change({ maxLines: positiveInt(e.currentTarget.value) }, true)}
              />
            </InlineField>
            <InlineField label="Direction">
              <RadioButtonGroup
                size="sm"
                options={DIRECTIONS}
                value={query.direction ?? 'backward'}
                onChange={(direction) => change({ direction }, true)}
              />
            </InlineField>
          </>
        )}
        {metric && !imports && app !== CoreApp.Explore && (
          <InlineField label="Legend" tooltip="Series name, e.g. {{level}}">
            <Input
              aria-label="Legend"
              width={20}
              defaultValue={query.legendFormat}
              placeholder="auto"
              onBlur={(e) => change({ legendFormat: e.currentTarget.value || undefined }, true)}
            />
          </InlineField>
        )}
        {metric && !imports && app !== CoreApp.Explore && (
          <InlineField
            label="Format"
            tooltip="Table: one row per series, a column per label and the value in 'Value #<refId>'"
          >
            <RadioButtonGroup
              size="sm"
              options={FORMATS}
              value={query.format ?? 'time_series'}
              onChange={(format) => change({ format: format === 'time_series' ? undefined : format }, true)}
            />
          </InlineField>
        )}
        {metric && !imports && (
          <InlineField label="Step" tooltip="Time between points, e.g. 30s; empty follows the panel">
            <Input
              aria-label="Step"
              width={10}
              defaultValue={query.step}
              placeholder="auto"
              onBlur={(e) => change({ step: e.currentTarget.value || undefined }, true)}
            />
          </InlineField>
        )}
      </Stack>
    </div>
  );
}

function positiveInt(s: string): number | undefined {
  const n = Math.floor(Number(s));
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

const getStyles = (theme: GrafanaTheme2) => ({
  editor: css({
    display: 'flex',
    flexDirection: 'column',
    gap: theme.spacing(1),
    width: '100%',
  }),
  preview: css({
    margin: 0,
    padding: theme.spacing(0.5, 1),
    fontSize: theme.typography.bodySmall.fontSize,
    whiteSpace: 'pre-wrap',
    wordBreak: 'break-all',
  }),
});
