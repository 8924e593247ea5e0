import { QueryEditorProps } from '@grafana/data';
import { Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, RadioButtonGroup } from '@grafana/ui';
import React, { useState } from 'react';

import type { LogsiftDatasource } from '../datasource';
import { fromVariableModel, parseVariableQuery, toVariableModel, variableQueryText } from '../logql/variables';
import { LogsiftOptions, LogsiftQuery, LogsiftVariableQuery, LogsiftVariableQueryType } from '../types';

export type Props = QueryEditorProps<LogsiftDatasource, LogsiftQuery, LogsiftOptions, LogsiftVariableQuery>;

const REF_ID = 'LogsiftVariableQuery';

const TYPES: Array<{ value: LogsiftVariableQueryType; label: string; description: string }> = [
  { value: 'labelNames', label: 'Label names', description: 'The names of the labels of the streams' },
  { value: 'labelValues', label: 'Label values', description: 'The values of one label' },
  { value: 'workspaces', label: 'Workspaces', description: 'The names of the workspaces' },
];

/** Reads what a variable holds: this editor's model, or the text query of older dashboards. */
export function variableModel(query: LogsiftVariableQuery | string | undefined): LogsiftVariableQuery {
  if (typeof query === 'string') {
    const parsed = parseVariableQuery(query);
    return parsed ? toVariableModel(parsed, REF_ID) : { refId: REF_ID, type: 'labelValues' };
  }
  if (!query?.type) {
    return { refId: query?.refId ?? REF_ID, type: 'labelValues' };
  }
  return query;
}

/** The query variable editor: what to list, which label, and an optional stream selector to narrow it. */
export function VariableQueryEditor({ datasource, query, onChange, range }: Props) {
  const model = variableModel(query as LogsiftVariableQuery | string | undefined);
  // The selector is saved when the field is left, not on every key.
  const [stream, setStream] = useState(model.stream ?? '');
  // A selector changed from outside (the saved query) replaces what is being typed.
  const [savedStream, setSavedStream] = useState(model.stream ?? '');
  if ((model.stream ?? '') !== savedStream) {
    setSavedStream(model.stream ?? '');
    setStream(model.stream ?? '');
  }

  const save = (next: LogsiftVariableQuery) => {
    const clean: LogsiftVariableQuery = { refId: next.refId, type: next.type };
    if (next.type === 'labelValues' && next.label) {
      clean.label = next.label;
    }
    if (next.type !== 'workspaces' && next.stream?.trim()) {
      clean.stream = next.stream.trim();
    }
    const lookup = fromVariableModel(clean);
    // The second argument is the definition Grafana shows in the list of variables.
    (onChange as (q: LogsiftVariableQuery, definition?: string) => void)(
      clean,
      lookup ? variableQueryText(lookup) : undefined
    );
  };

  const labelOptions = async (input: string): Promise<Array<ComboboxOption<string>>> => {
    const names = await datasource.getLabelNames({ selector: model.stream?.trim() || undefined, range });
    const needle = input.toLowerCase();
    return names.filter((n) => n.toLowerCase().includes(needle)).map((n) => ({ value: n }));
  };

  return (
    <div data-testid="logsift-variable-editor">
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={20}>
          <RadioButtonGroup
            aria-label="Query type"
            options={TYPES}
            value={model.type}
            onChange={(type) => save({ ...model, type })}
          />
        </InlineField>
      </InlineFieldRow>
      {model.type === 'labelValues' && (
        <InlineFieldRow>
          <InlineField label="Label" labelWidth={20} tooltip="The label whose values the variable lists">
            <Combobox
              aria-label="Label"
              width={32}
              placeholder="label"
              createCustomValue
              value={model.label || null}
              options={labelOptions}
              onChange={(o) => save({ ...model, label: o.value })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {model.type !== 'workspaces' && (
        <InlineFieldRow>
          <InlineField
            label="Stream selector"
            labelWidth={20}
            grow
            tooltip={'Only the streams it selects are looked at, e.g. {env="prod"}; variables are allowed'}
          >
            <Input
              aria-label="Stream selector"
              placeholder='{env="prod"}'
              value={stream}
              onChange={(e) => setStream(e.currentTarget.value)}
              onBlur={() => {
                if (stream.trim() !== (model.stream ?? '')) {
                  save({ ...model, stream });
                }
              }}
            />
          </InlineField>
        </InlineFieldRow>
      )}
    </div>
  );
}
