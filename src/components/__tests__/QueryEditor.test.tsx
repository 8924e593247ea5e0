import { CoreApp } from '@grafana/data';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import { LogsiftDatasource } from '../../datasource';
import { RANGE } from '../../testing/fixtures';
import { LogsiftQuery } from '../../types';
import { QueryEditor } from '../QueryEditor';

const user = userEvent.setup({ delay: null });

// The Monaco editor is covered by its own test and the browser check.
jest.mock('../LogQLCodeEditor', () => ({
  LogQLCodeEditor: ({ value, onChange }: { value: string; onChange: (v: string) => void }) => (
    <textarea aria-label="LogQL" defaultValue={value} onBlur={(e) => onChange(e.currentTarget.value)} />
  ),
}));

const sizes = ['clientWidth', 'clientHeight'] as const;
beforeAll(() => {
  sizes.forEach((p) => Object.defineProperty(HTMLElement.prototype, p, { configurable: true, get: () => 300 }));
});
afterAll(() => {
  sizes.forEach((p) => delete (HTMLElement.prototype as unknown as Record<string, unknown>)[p]);
});

function fakeDatasource() {
  return {
    getWorkspaces: jest.fn(async () => ['case-4711', 'hosts']),
    getLabelNames: jest.fn(async () => ['job']),
    getLabelValues: jest.fn(async () => ['api']),
    estimate: jest.fn(async () => ({ streams: 2, chunks: 14, entries: 12000, bytes: 3_400_000 })),
    defaultMaxLines: () => 1000,
  };
}

function Harness({
  initial,
  ds,
  onRun,
  app,
}: {
  initial: LogsiftQuery;
  ds: ReturnType<typeof fakeDatasource>;
  onRun?: () => void;
  app?: CoreApp;
}) {
  const [query, setQuery] = useState(initial);
  return (
    <>
      <QueryEditor
        datasource={ds as unknown as LogsiftDatasource}
        query={query}
        onChange={setQuery}
        onRunQuery={onRun ?? (() => undefined)}
        range={RANGE}
        app={app}
      />
      <output data-testid="state">{JSON.stringify(query)}</output>
    </>
  );
}

const state = () => JSON.parse(screen.getByTestId('state').textContent ?? '{}') as LogsiftQuery;

describe('QueryEditor', () => {
  it('opens new queries in the builder and parsed ones too, code-only ones in code mode', () => {
    const ds = fakeDatasource();
    const { unmount } = render(<Harness initial={{ refId: 'A', expr: '' }} ds={ds} />);
    expect(screen.getByTestId('logsift-query-builder')).toBeInTheDocument();
    unmount();
    render(<Harness initial={{ refId: 'A', expr: '{a="b"} | line_format "{{.x}}"' }} ds={ds} />);
    expect(screen.getByLabelText('LogQL')).toBeInTheDocument();
  });

  it('switches between builder and code, remembering the choice', async () => {
    const ds = fakeDatasource();
    render(<Harness initial={{ refId: 'A', expr: '{job="api"}' }} ds={ds} />);
    expect(screen.getByTestId('builder-preview')).toHaveTextContent('{job="api"}');
    await user.click(screen.getByRole('radio', { name: 'Code' }));
    expect(state().editorMode).toBe('code');
    expect(screen.getByLabelText('LogQL')).toHaveValue('{job="api"}');
    await user.click(screen.getByRole('radio', { name: 'Builder' }));
    expect(state().editorMode).toBe('builder');
  });

  it('shows the cost estimate before the query runs', async () => {
    const ds = fakeDatasource();
    render(<Harness initial={{ refId: 'A', expr: '{job="api"}', workspace: 'case-4711' }} ds={ds} />);
    expect(await screen.findByText('≈ 14 chunks, 3.40 MB to scan', undefined, { timeout: 5000 })).toBeInTheDocument();
    expect(ds.estimate).toHaveBeenCalledWith(
      expect.objectContaining({ expr: '{job="api"}', workspace: 'case-4711' }),
      RANGE
    );
  });

  it('shows no estimate for an empty query and says so when the server has none', async () => {
    const ds = fakeDatasource();
    ds.estimate.mockRejectedValueOnce({ data: { message: 'estimates need a selector' } });
    const { unmount } = render(<Harness initial={{ refId: 'A', expr: '' }} ds={ds} />);
    expect(screen.queryByTestId('cost-estimate')).not.toBeInTheDocument();
    unmount();
    render(<Harness initial={{ refId: 'A', expr: '{a="b"}' }} ds={ds} />);
    expect(await screen.findByText('No estimate', undefined, { timeout: 5000 })).toBeInTheDocument();
  });

  it('picks a workspace and runs the query', async () => {
    const ds = fakeDatasource();
    const onRun = jest.fn();
    render(<Harness initial={{ refId: 'A', expr: '{job="api"}' }} ds={ds} onRun={onRun} />);
    await user.click(screen.getByRole('combobox', { name: 'Workspace' }));
    await user.click(await screen.findByRole('option', { name: /case-4711/ }));
    expect(state().workspace).toBe('case-4711');
    expect(onRun).toHaveBeenCalled();
  });

  it('sets the query type, line limit and direction for log queries', async () => {
    const ds = fakeDatasource();
    render(<Harness initial={{ refId: 'A', expr: '{job="api"}' }} ds={ds} />);
    await user.click(screen.getByRole('radio', { name: 'Stream' }));
    expect(state().queryType).toBe('stream');
    await user.click(screen.getByLabelText('Line limit'));
    await user.paste('200');
    await user.click(screen.getByRole('radio', { name: 'Oldest first' }));
    expect(state()).toMatchObject({ maxLines: 200, direction: 'forward' });
    expect(screen.queryByLabelText('Step')).not.toBeInTheDocument();
  });

  it('switches to import progress: no LogQL, no estimate, an optional workspace', async () => {
    const ds = fakeDatasource();
    const onRun = jest.fn();
    render(<Harness initial={{ refId: 'A', expr: '' }} ds={ds} onRun={onRun} />);
    await user.click(screen.getByRole('radio', { name: 'Import progress' }));
    expect(state().queryType).toBe('imports');
    expect(onRun).toHaveBeenCalled();
    expect(screen.queryByTestId('logsift-query-builder')).not.toBeInTheDocument();
    expect(screen.queryByLabelText('LogQL')).not.toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Code' })).not.toBeInTheDocument();
    expect(screen.queryByLabelText('Line limit')).not.toBeInTheDocument();
    expect(screen.getByText(/Import runs of every workspace/)).toBeInTheDocument();
    await user.click(screen.getByRole('combobox', { name: 'Workspace' }));
    await user.click(await screen.findByRole('option', { name: /case-4711/ }));
    expect(state()).toMatchObject({ queryType: 'imports', workspace: 'case-4711' });
    expect(screen.getByText(/Import runs of case-4711/)).toBeInTheDocument();
    expect(ds.estimate).not.toHaveBeenCalled();
  });

  it('offers legend and step for metric queries in dashboards', async () => {
    const ds = fakeDatasource();
    render(<Harness initial={{ refId: 'A', expr: 'sum(rate({job="api"}[5m]))' }} ds={ds} app={CoreApp.Dashboard} />);
    expect(screen.queryByLabelText('Line limit')).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Legend'));
    await user.paste('{{level}}');
    await user.click(screen.getByLabelText('Step'));
    await user.paste('30s');
    await user.click(screen.getByRole('radio', { name: 'Instant' }));
    await waitFor(() =>
      expect(state()).toMatchObject({ legendFormat: '{{level}}', step: '30s', queryType: 'instant' })
    );
    expect(state().format).toBeUndefined();
    await user.click(screen.getByRole('radio', { name: 'Table' }));
    expect(state().format).toBe('table');
    await user.click(screen.getByRole('radio', { name: 'Time series' }));
    expect(state().format).toBeUndefined();
  });
});
