import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { DataSourcePicker } from '@grafana/runtime';
import { Button, Field, IconButton, Input, RadioButtonGroup, Stack, Switch, TextArea, useStyles2 } from '@grafana/ui';
import React, { useState } from 'react';

import { extractValue } from '../derivedFields';
import { DerivedFieldConfig } from '../types';

interface Props {
  value: DerivedFieldConfig[];
  onChange: (value: DerivedFieldConfig[]) => void;
}

const MATCHER_TYPES = [
  { value: 'regex' as const, label: 'Regex in log line' },
  { value: 'label' as const, label: 'Label' },
];

export function DerivedFieldsEditor({ value, onChange }: Props) {
  const styles = useStyles2(getStyles);
  const [debugLine, setDebugLine] = useState('');
  const set = (i: number, patch: Partial<DerivedFieldConfig>) =>
    onChange(value.map((f, j) => (j === i ? { ...f, ...patch } : f)));

  return (
    <Stack direction="column" gap={1}>
      {value.map((field, i) => (
        <div key={i} className={styles.field} data-testid={`derived-field-${i}`}>
          <Stack gap={1} wrap="wrap" alignItems="flex-start">
            <Field label="Name" required invalid={!field.name} error={!field.name ? 'A name' : undefined}>
              <Input
                aria-label="Derived field name"
                width={20}
                value={field.name}
                onChange={(e) => set(i, { name: e.currentTarget.value })}
              />
            </Field>
            <Field label="Type">
              <RadioButtonGroup
                size="sm"
                options={MATCHER_TYPES}
                value={field.matcherType ?? 'regex'}
                onChange={(matcherType) => set(i, { matcherType })}
              />
            </Field>
            <Field
              label={field.matcherType === 'label' ? 'Label' : 'Regex'}
              description={field.matcherType === 'label' ? undefined : 'The first capture group is the value'}
              invalid={field.matcherType !== 'label' && !isValidRegex(field.matcherRegex)}
              error="Not a valid regular expression"
            >
              <Input
                aria-label="Derived field matcher"
                width={36}
                placeholder={field.matcherType === 'label' ? 'trace_id' : 'traceID=(\\w+)'}
                value={field.matcherRegex}
                onChange={(e) => set(i, { matcherRegex: e.currentTarget.value })}
              />
            </Field>
            <IconButton
              className={styles.remove}
              name="trash-alt"
              tooltip="Remove derived field"
              onClick={() => onChange(value.filter((_, j) => j !== i))}
            />
          </Stack>
          <Stack gap={1} wrap="wrap" alignItems="flex-start">
            <Field label={field.datasourceUid ? 'Query' : 'URL'} description="${__value.raw} is replaced by the value">
              <Input
                aria-label="Derived field URL"
                width={48}
                placeholder={field.datasourceUid ? '${__value.raw}' : 'https://tracing.example/trace/${__value.raw}'}
                value={field.url}
                onChange={(e) => set(i, { url: e.currentTarget.value })}
              />
            </Field>
            <Field label="Link label">
              <Input
                aria-label="Derived field link label"
                width={20}
                value={field.urlDisplayLabel ?? ''}
                onChange={(e) => set(i, { urlDisplayLabel: e.currentTarget.value || undefined })}
              />
            </Field>
            <Field label="Internal link" description="Open a query in another datasource">
              <Switch
                aria-label="Internal link"
                value={field.datasourceUid !== undefined}
                onChange={(e) => set(i, { datasourceUid: e.currentTarget.checked ? '' : undefined })}
              />
            </Field>
            {field.datasourceUid !== undefined && (
              <Field label="Datasource">
                <DataSourcePicker
                  tracing
                  noDefault
                  width={28}
                  current={field.datasourceUid || null}
                  onChange={(ds) => set(i, { datasourceUid: ds.uid })}
                />
              </Field>
            )}
          </Stack>
        </div>
      ))}
      <Stack>
        <Button
          variant="secondary"
          icon="plus"
          size="sm"
          onClick={() => onChange([...value, { name: '', matcherType: 'regex', matcherRegex: '', url: '' }])}
        >
          Add derived field
        </Button>
      </Stack>
      {value.length > 0 && (
        <Field label="Try it" description="Paste a log line to see what each field takes from it">
          <Stack direction="column" gap={0.5}>
            <TextArea
              aria-label="Example log line"
              rows={2}
              value={debugLine}
              onChange={(e) => setDebugLine(e.currentTarget.value)}
            />
            {debugLine &&
              value.map((f, i) => (
                <div key={i} data-testid={`derived-field-result-${i}`}>
                  <b>{f.name || '(unnamed)'}</b>:{' '}
                  {f.matcherType === 'label'
                    ? 'taken from the label at query time'
                    : (extractValue(f, debugLine, undefined) ?? 'no match')}
                </div>
              ))}
          </Stack>
        </Field>
      )}
    </Stack>
  );
}

function isValidRegex(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

const getStyles = (theme: GrafanaTheme2) => ({
  field: css({
    padding: theme.spacing(1),
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
  }),
  remove: css({
    marginTop: theme.spacing(3),
  }),
});
