import { TimeRange } from '@grafana/data';
import { Icon, Text, Tooltip } from '@grafana/ui';
import React, { useEffect, useState } from 'react';

import { LogsiftDatasource } from '../datasource';
import { formatEstimate } from '../estimate';
import { CostEstimate as Estimate, LogsiftQuery } from '../types';

export const ESTIMATE_DELAY_MS = 600;

interface Props {
  datasource: LogsiftDatasource;
  query: LogsiftQuery;
  range?: TimeRange;
}

type EstimateState =
  | { status: 'idle' }
  | { status: 'loading' }
  | { status: 'done'; estimate: Estimate }
  | { status: 'error'; message: string };

/**
 * "≈ N chunks, M MB to scan": asked of the server (from its index, no chunk read) while the query
 * is edited, before it runs.
 */
export function CostEstimate({ datasource, query, range }: Props) {
  const [state, setState] = useState<EstimateState>({ status: 'idle' });
  const from = range?.from.valueOf();
  const to = range?.to.valueOf();

  const active = Boolean(query.expr?.trim());

  useEffect(() => {
    if (!active) {
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      setState({ status: 'loading' });
      datasource.estimate(query, range).then(
        (estimate) => live && setState({ status: 'done', estimate }),
        (err) => live && setState({ status: 'error', message: err?.data?.message ?? err?.message ?? 'estimate failed' })
      );
    }, ESTIMATE_DELAY_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // The range object changes identity on every render; its bounds are what matter.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasource, active, query.expr, query.workspace, from, to]);

  if (!active) {
    return null;
  }
  switch (state.status) {
    case 'idle':
      return null;
    case 'loading':
      return (
        <Text color="secondary" variant="bodySmall" data-testid="cost-estimate">
          Estimating…
        </Text>
      );
    case 'error':
      return (
        <Tooltip content={state.message}>
          <span data-testid="cost-estimate">
            <Text color="secondary" variant="bodySmall">
              <Icon name="info-circle" size="sm" /> No estimate
            </Text>
          </span>
        </Tooltip>
      );
    case 'done':
      return (
        <Tooltip content={state.estimate.summary ?? detail(state.estimate)}>
          <span data-testid="cost-estimate">
            <Text color="secondary" variant="bodySmall">
              {formatEstimate(state.estimate)}
            </Text>
          </span>
        </Tooltip>
      );
  }
}

function detail(e: Estimate): string {
  return `${e.streams.toLocaleString('en-US')} streams, ${e.entries.toLocaleString('en-US')} entries (line filters may skip most chunks)`;
}
