import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

const user = userEvent.setup({ delay: null });
import React, { useState } from 'react';

import { LogsiftDatasource } from '../../datasource';
import { RANGE } from '../../testing/fixtures';
import { QueryBuilder } from '../QueryBuilder';

function fakeDatasource() {
  const calls: string[] = [];
  const ds = {
    getLabelNames: jest.fn(async ({ selector }: { selector?: string }) => {
      calls.push(`names ${selector ?? ''}`);
      return ['job', 'env', 'level'];
    }),
    getLabelValues: jest.fn(async (label: string, { selector }: { selector?: string }) => {
      calls.push(`values ${label} ${selector ?? ''}`);
      return label === 'job' ? ['api', 'web'] : ['prod', 'dev'];
    }),
  };
  return { ds: ds as unknown as LogsiftDatasource, calls };
}

/** Holds the expression like Grafana's query row does. */
function Harness({
  initial,
  ds,
  onChange,
  onSwitchToCode,
}: {
  initial: string;
  ds: LogsiftDatasource;
  onChange: (e: string) => void;
  onSwitchToCode?: () => void;
}) {
  const [expr, setExpr] = useState(initial);
  return (
    <>
      <QueryBuilder
        datasource={ds}
        expr={expr}
        range={RANGE}
        onChange={(e) => {
          setExpr(e);
          onChange(e);
        }}
        onSwitchToCode={onSwitchToCode ?? (() => undefined)}
      />
      <button onClick={() => setExpr('{job="web"} |= "from outside"')}>external change</button>
    </>
  );
}

async function choose(label: string, text: string) {
  const input = screen.getByRole('combobox', { name: label });
  await user.click(input);
  const option = await screen.findByRole('option', { name: new RegExp(`^${text.replace(/[|()]/g, '\\$&')}`) });
  await user.click(option);
}

// Combobox virtualises its menu and renders only the options that fit the element's measured
// client size; jsdom measures everything as 0.
const sizes = ['clientWidth', 'clientHeight'] as const;
const original = sizes.map((p) => Object.getOwnPropertyDescriptor(HTMLElement.prototype, p));
beforeAll(() => {
  sizes.forEach((p) => Object.defineProperty(HTMLElement.prototype, p, { configurable: true, get: () => 300 }));
});
afterAll(() => {
  sizes.forEach((p, i) => {
    const d = original[i];
    if (d) {
      Object.defineProperty(HTMLElement.prototype, p, d);
    } else {
      // The real getters live on Element.prototype; dropping ours uncovers them.
      delete (HTMLElement.prototype as unknown as Record<string, unknown>)[p];
    }
  });
});

describe('QueryBuilder', () => {
  it('builds a log query from label, value and a line filter', async () => {
    const { ds, calls } = fakeDatasource();
    const changes: string[] = [];
    render(<Harness initial="" ds={ds} onChange={(e) => changes.push(e)} />);

    await user.click(screen.getByRole('button', { name: 'Label' }));
    await choose('Label 1', 'job');
    await choose('Value 1', 'api');
    expect(changes[changes.length - 1]).toBe('{job="api"}');
    expect(calls).toContain('values job ');

    await user.click(screen.getByRole('button', { name: 'Line filter' }));
    await user.type(screen.getByLabelText('Line filter text 1'), 'timeout');
    expect(changes[changes.length - 1]).toBe('{job="api"} |= "timeout"');

    await choose('Line filter operator 1', 'does not contain');
    expect(changes[changes.length - 1]).toBe('{job="api"} != "timeout"');
  });

  it('narrows label values by the other matchers', async () => {
    const { ds, calls } = fakeDatasource();
    render(<Harness initial='{job="api"}' ds={ds} onChange={() => undefined} />);
    await user.click(screen.getByRole('button', { name: 'Label' }));
    await choose('Label 2', 'env');
    await choose('Value 2', 'prod');
    expect(calls).toContain('values env {job="api"}');
  });

  it('shows a parsed query, adds a parser and a label filter, and removes rows', async () => {
    const { ds } = fakeDatasource();
    const changes: string[] = [];
    render(<Harness initial='{job="api"} |= "x"' ds={ds} onChange={(e) => changes.push(e)} />);
    expect(screen.getByLabelText('Line filter text 1')).toHaveValue('x');

    await user.click(screen.getByRole('radio', { name: 'json' }));
    expect(changes[changes.length - 1]).toBe('{job="api"} |= "x" | json');

    await user.click(screen.getByRole('button', { name: 'Label filter' }));
    await choose('Label filter label 1', 'level');
    await user.type(screen.getByLabelText('Label filter value 1'), 'error');
    expect(changes[changes.length - 1]).toBe('{job="api"} |= "x" | json | level="error"');

    await user.click(screen.getByRole('button', { name: 'Remove line filter' }));
    expect(changes[changes.length - 1]).toBe('{job="api"} | json | level="error"');
  });

  it('turns the query into a metric query with an aggregation', async () => {
    const { ds } = fakeDatasource();
    const changes: string[] = [];
    render(<Harness initial='{job="api"}' ds={ds} onChange={(e) => changes.push(e)} />);
    await user.click(screen.getByLabelText('Metric query'));
    expect(changes[changes.length - 1]).toBe('count_over_time({job="api"} [$__auto])');
    await choose('Range function', 'rate');
    await choose('Aggregation', 'sum');
    expect(changes[changes.length - 1]).toBe('sum(rate({job="api"} [$__auto]))');
    await user.clear(screen.getByLabelText('Range'));
    await user.type(screen.getByLabelText('Range'), '5m');
    expect(changes[changes.length - 1]).toBe('sum(rate({job="api"} [5m]))');
  });

  it('shows a pattern expression input for the pattern parser', async () => {
    const { ds } = fakeDatasource();
    const changes: string[] = [];
    render(<Harness initial='{job="nginx"} | pattern "<ip> <_>"' ds={ds} onChange={(e) => changes.push(e)} />);
    expect(screen.getByLabelText('Parser expression')).toHaveValue('<ip> <_>');
  });

  it('follows a query changed from outside', async () => {
    const { ds } = fakeDatasource();
    render(<Harness initial='{job="api"}' ds={ds} onChange={() => undefined} />);
    await user.click(screen.getByRole('button', { name: 'external change' }));
    await waitFor(() => expect(screen.getByLabelText('Line filter text 1')).toHaveValue('from outside'));
  });

  it('offers code mode or a fresh start for queries it cannot show', async () => {
    const { ds } = fakeDatasource();
    const toCode = jest.fn();
    const changes: string[] = [];
    render(
      <Harness
        initial='{job="api"} | line_format "{{.msg}}"'
        ds={ds}
        onChange={(e) => changes.push(e)}
        onSwitchToCode={toCode}
      />
    );
    expect(screen.getByTestId('builder-unsupported')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Back to code' }));
    expect(toCode).toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Start over in builder' }));
    expect(changes).toEqual(['']);
    expect(screen.getByTestId('logsift-query-builder')).toBeInTheDocument();
  });
});
