import { BuilderState, emptyBuilderState, parseQuery, renderQuery } from '../builder';

const state = (s: Partial<BuilderState>): BuilderState => ({ ...emptyBuilderState(), ...s });

describe('renderQuery', () => {
  it('renders nothing until a label matcher is complete', () => {
    expect(renderQuery(emptyBuilderState())).toBe('');
    expect(renderQuery(state({ labels: [{ label: 'job', op: '=', value: '' }] }))).toBe('');
    expect(
      renderQuery(state({ labels: [{ label: '', op: '=', value: 'x' }], lineFilters: [{ op: '|=', value: 'x' }] }))
    ).toBe('');
  });

  it('renders matchers with every operator, escaping values', () => {
    expect(
      renderQuery(
        state({
          labels: [
            { label: 'job', op: '=', value: 'api' },
            { label: 'env', op: '!=', value: 'dev' },
            { label: 'host', op: '=~', value: 'web-\\d+' },
            { label: 'file', op: '!~', value: 'say "hi"' },
          ],
        })
      )
    ).toBe('{job="api", env!="dev", host=~"web-\\\\d+", file!~"say \\"hi\\""}');
  });

  it('renders line filters, a parser and label filters in pipeline order, skipping unfinished rows', () => {
    expect(
      renderQuery(
        state({
          labels: [{ label: 'job', op: '=', value: 'api' }],
          lineFilters: [
            { op: '|=', value: 'timeout' },
            { op: '!=', value: '' },
            { op: '!~', value: 'health(z)?' },
          ],
          parser: { type: 'logfmt' },
          labelFilters: [
            { label: 'level', op: '=', value: 'error' },
            { label: 'duration', op: '>', value: '250ms' },
            { label: 'status', op: '>=', value: '500' },
            { label: 'path', op: '=~', value: '/api/.*' },
            { label: 'size', op: '<', value: 'big' },
            { label: '', op: '=', value: 'orphan' },
          ],
        })
      )
    ).toBe(
      '{job="api"} |= "timeout" !~ "health(z)?" | logfmt | level="error" | duration>250ms | status>=500 | path=~"/api/.*" | size<"big"'
    );
  });

  it('renders the expression of pattern and regexp parsers', () => {
    const labels = [{ label: 'job', op: '=' as const, value: 'nginx' }];
    expect(
      renderQuery(state({ labels, parser: { type: 'pattern', expression: '<ip> - - <_> "<method> <path>"' } }))
    ).toBe('{job="nginx"} | pattern "<ip> - - <_> \\"<method> <path>\\""');
    expect(renderQuery(state({ labels, parser: { type: 'regexp', expression: '(?P<code>\\d{3})' } }))).toBe(
      '{job="nginx"} | regexp "(?P<code>\\\\d{3})"'
    );
    expect(renderQuery(state({ labels, parser: { type: 'json' } }))).toBe('{job="nginx"} | json');
  });

  it('renders metric queries: range function, unwrap, aggregation with grouping and k', () => {
    const labels = [{ label: 'job', op: '=' as const, value: 'api' }];
    expect(renderQuery(state({ labels, metric: { rangeFunction: 'count_over_time', range: '$__auto', by: [] } }))).toBe(
      'count_over_time({job="api"} [$__auto])'
    );
    expect(
      renderQuery(
        state({
          labels,
          lineFilters: [{ op: '|=', value: 'error' }],
          metric: { rangeFunction: 'rate', range: '5m', aggregation: 'sum', by: ['level', 'host'] },
        })
      )
    ).toBe('sum by (level, host) (rate({job="api"} |= "error" [5m]))');
    expect(
      renderQuery(
        state({
          labels,
          parser: { type: 'json' },
          metric: {
            rangeFunction: 'avg_over_time',
            range: '1m',
            unwrap: 'latency_ms',
            aggregation: 'topk',
            param: 3,
            by: [],
          },
        })
      )
    ).toBe('topk(3, avg_over_time({job="api"} | json | unwrap latency_ms [1m]))');
    expect(renderQuery(state({ labels, metric: { rangeFunction: 'rate', range: '', by: [] } }))).toBe(
      'rate({job="api"} [$__auto])'
    );
  });
});

describe('parseQuery', () => {
  it('gives the empty state for an empty query', () => {
    expect(parseQuery('  ')).toEqual(emptyBuilderState());
  });

  const roundTrips = [
    '{job="api"}',
    '{job="api", env!="dev", host=~"web-\\\\d+", file!~"say \\"hi\\""}',
    '{job="api"} |= "timeout" != "health" |~ "a|b" !~ "c"',
    '{job="api"} | json',
    '{job="api"} |= "x" | logfmt | level="error" | duration>250ms | status>=500 | path=~"/api/.*"',
    '{job="nginx"} | pattern "<ip> - - <_> \\"<method> <path>\\""',
    '{job="nginx"} | regexp "(?P<code>\\\\d{3})"',
    '{job="api"} | level!="debug"',
    'count_over_time({job="api"} [$__auto])',
    'sum by (level, host) (rate({job="api"} |= "error" [5m]))',
    'topk(3, avg_over_time({job="api"} | json | unwrap latency_ms [1m]))',
    'sum(bytes_over_time({job="api"} [1h]))',
    '{job="$job", env=~"${env:regex}"} |= "$search"',
  ];
  it.each(roundTrips)('round-trips %s', (q) => {
    const parsed = parseQuery(q);
    expect(parsed).toBeDefined();
    expect(renderQuery(parsed!)).toBe(q);
  });

  it('reads the parts of a query', () => {
    expect(parseQuery('sum(count_over_time({app="x"} |= "y" | json | code>=500 [10m])) by (code)')).toEqual({
      labels: [{ label: 'app', op: '=', value: 'x' }],
      lineFilters: [{ op: '|=', value: 'y' }],
      parser: { type: 'json', expression: undefined },
      labelFilters: [{ label: 'code', op: '>=', value: '500' }],
      metric: {
        rangeFunction: 'count_over_time',
        range: '10m',
        unwrap: undefined,
        aggregation: 'sum',
        by: ['code'],
        param: undefined,
      },
    });
  });

  it('accepts backtick strings and normalises them to double quotes', () => {
    expect(renderQuery(parseQuery('{job=`api`} |~ `\\d+`')!)).toBe('{job="api"} |~ "\\\\d+"');
  });

  const notBuildable = [
    '{job="api"} | json | line_format "{{.msg}}"',
    '{job="api"} | json | logfmt',
    '{job="api"} | json |= "late line filter"',
    'rate({job="api"}[5m]) / rate({job="web"}[5m])',
    'quantile_over_time(0.99, {job="api"} | unwrap x [5m])',
    'sum_over_time({job="api"} [5m])',
    'count_over_time({job="api"} | unwrap x [5m])',
    '{job="api"} | unwrap x',
    'count_over_time({job="api"} [$__auto]) > $threshold',
    '{job="api"} |= "x" or "y"',
    '{job="api"',
    'label_replace(rate({a="b"}[1m]), "x", "$1", "a", "(.*)")',
    'rate({job="api"}[5m]) offset 1h',
    '{job="api"} | drop level',
    '{job=~"a"} | status == 500',
  ];
  it.each(notBuildable)('leaves %s to code mode', (q) => {
    expect(parseQuery(q)).toBeUndefined();
  });
});
