import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import { LogsiftDatasource } from '../../datasource';
import { RANGE } from '../../testing/fixtures';
import { LogsiftVariableQuery } from '../../types';
import { VariableQueryEditor, variableModel } from '../VariableQueryEditor';

const user = userEvent.setup({ delay: null });

// Combobox renders only the options that fit the measured size of its menu; jsdom measures 0.
const sizes = ['clientWidth', 'clientHeight'] as const;
beforeAll(() => {
  sizes.forEach((p) => Object.defineProperty(HTMLElement.prototype, p, { configurable: true, get: () => 300 }));
});
afterAll(() => {
  sizes.forEach((p) => delete (HTMLElement.prototype as unknown as Record<string, unknown>)[p]);
});

function Harness({
  initial,
  ds,
  onChange,
}: {
  initial: LogsiftVariableQuery | string;
  ds: LogsiftDatasource;
  onChange: (q: LogsiftVariableQuery, definition?: string) => void;
}) {
  const [query, setQuery] = useState(initial);
  return (
    <VariableQueryEditor
      datasource={ds}
      query={query as LogsiftVariableQuery}
      range={RANGE}
      onRunQuery={() => undefined}
      onChange={
        ((q: LogsiftVariableQuery, definition?: string) => {
          setQuery(q);
          onChange(q, definition);
        }) as (q: LogsiftVariableQuery) => void
      }
    />
  );
}

describe('VariableQueryEditor', () => {
  it('reads text queries of older dashboards', () => {
    expect(variableModel('label_values({env="prod"}, job)')).toMatchObject({
      type: 'labelValues',
      label: 'job',
      stream: '{env="prod"}',
    });
    expect(variableModel('workspaces()')).toMatchObject({ type: 'workspaces' });
    expect(variableModel(undefined)).toMatchObject({ type: 'labelValues' });
  });

  it('builds a label values query with a label from the server and a stream selector', async () => {
    const getLabelNames = jest.fn(async () => ['job', 'env']);
    const ds = { getLabelNames } as unknown as LogsiftDatasource;
    const onChange = jest.fn();
    render(<Harness initial={{ refId: 'V', type: 'labelValues' }} ds={ds} onChange={onChange} />);

    await user.type(screen.getByLabelText('Stream selector'), '{{env="prod"}');
    await user.tab();
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', type: 'labelValues', stream: '{env="prod"}' }, undefined);

    await user.click(screen.getByRole('combobox', { name: 'Label' }));
    await user.click(await screen.findByRole('option', { name: /^job/ }));
    expect(onChange).toHaveBeenLastCalledWith(
      { refId: 'V', type: 'labelValues', label: 'job', stream: '{env="prod"}' },
      'label_values({env="prod"}, job)'
    );
    // Label names come from the streams the selector picks.
    expect(getLabelNames).toHaveBeenCalledWith({ selector: '{env="prod"}', range: RANGE });
  });

  it('switches to workspaces, which takes no label and no selector', async () => {
    const ds = { getLabelNames: jest.fn(async () => []) } as unknown as LogsiftDatasource;
    const onChange = jest.fn();
    render(
      <Harness
        initial={{ refId: 'V', type: 'labelValues', label: 'job', stream: '{a="b"}' }}
        ds={ds}
        onChange={onChange}
      />
    );
    await user.click(screen.getByRole('radio', { name: 'Workspaces' }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', type: 'workspaces' }, 'workspaces()');
    await waitFor(() => expect(screen.queryByLabelText('Stream selector')).not.toBeInTheDocument());
    expect(screen.queryByRole('combobox', { name: 'Label' })).not.toBeInTheDocument();
  });
});
