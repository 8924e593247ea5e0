import { TimeRange } from '@grafana/data';
import { Combobox, ComboboxOption } from '@grafana/ui';
import React from 'react';

import { LogsiftDatasource } from '../datasource';

interface Props {
  datasource: LogsiftDatasource;
  value?: string;
  /** Workspaces with data in this range are listed besides those of the last 30 days. */
  range?: TimeRange;
  onChange: (workspace: string | undefined) => void;
}

/** Chooses the workspace (an imported bundle or a tailed source set) a query searches; empty means all. */
export function WorkspacePicker({ datasource, value, range, onChange }: Props) {
  const load = async (input: string): Promise<Array<ComboboxOption<string>>> => {
    const names = await datasource.getWorkspaces(range);
    const needle = input.toLowerCase();
    return names.filter((n) => n.toLowerCase().includes(needle)).map((n) => ({ value: n }));
  };
  return (
    <Combobox
      aria-label="Workspace"
      data-testid="workspace-picker"
      placeholder="All workspaces"
      width={26}
      isClearable
      createCustomValue
      value={value || null}
      options={load}
      onChange={(o) => onChange(o?.value || undefined)}
    />
  );
}
