import {
  addLabelFilter,
  addLineFilter,
  addMatcher,
  applyAdHocFilters,
  findLogQueries,
  firstLogQuery,
  hasLabelFilter,
  hasMatcher,
  isMetricQuery,
  removeLabelFilter,
  removeMatcher,
  toggleLabelFilter,
  toggleMatcher,
} from '../modify';

describe('findLogQueries', () => {
  it('finds the selector, its line filters and the end of its pipeline', () => {
    const q = '{a="b"} |= "x" != "y" | json | c="d"';
    const [s] = findLogQueries(q);
    expect(q.slice(s.selectorStart, s.selectorClose + 1)).toBe('{a="b"}');
    expect(q.slice(0, s.lineFiltersEnd)).toBe('{a="b"} |= "x" != "y"');
    expect(q.slice(0, s.pipelineEnd)).toBe(q);
  });

  it('stops the pipeline at the range and at a closing parenthesis', () => {
    const q = 'sum(rate({a="b"} | json | ip("10.0.0.0/8") [5m])) / sum(rate({c="d"}[5m]))';
    const segments = findLogQueries(q);
    expect(segments.map((s) => q.slice(s.selectorStart, s.pipelineEnd))).toEqual([
      '{a="b"} | json | ip("10.0.0.0/8")',
      '{c="d"}',
    ]);
  });
});

describe('addLabelFilter', () => {
  it('appends a filter to a log query', () => {
    expect(addLabelFilter('{job="api"} | json', 'level', 'error')).toBe('{job="api"} | json | level="error"');
    expect(addLabelFilter('{job="api"}', 'level', 'debug', '!=')).toBe('{job="api"} | level!="debug"');
  });

  it('escapes the value and writes comparisons bare', () => {
    expect(addLabelFilter('{a="b"}', 'msg', 'say "hi"\\')).toBe('{a="b"} | msg="say \\"hi\\"\\\\"');
    expect(addLabelFilter('{a="b"}', 'status', '500', '>=')).toBe('{a="b"} | status>=500');
  });

  it('adds the filter inside every log query of a metric query, before the range', () => {
    expect(
      addLabelFilter('sum by (x) (count_over_time({a="b"} |= "e" [5m])) / count_over_time({c="d"}[5m])', 'x', '1')
    ).toBe('sum by (x) (count_over_time({a="b"} |= "e" | x="1" [5m])) / count_over_time({c="d"} | x="1"[5m])');
  });

  it('ignores label names LogQL cannot hold and queries without a selector', () => {
    expect(addLabelFilter('{a="b"}', 'bad-name', 'x')).toBe('{a="b"}');
    expect(addLabelFilter('vector(1)', 'a', 'b')).toBe('vector(1)');
  });
});

describe('addLineFilter', () => {
  it('adds after the existing line filters, before the parser', () => {
    expect(addLineFilter('{a="b"} |= "x" | json | l="v"', 'timeout')).toBe(
      '{a="b"} |= "x" |= "timeout" | json | l="v"'
    );
    expect(addLineFilter('{a="b"} | logfmt', 'noise', '!=')).toBe('{a="b"} != "noise" | logfmt');
  });
});

describe('label filter toggles', () => {
  const q = '{a="b"} | json | level="error" | host!="web-1"';

  it('finds a filter only with the same label, operator and value', () => {
    expect(hasLabelFilter(q, 'level', 'error')).toBe(true);
    expect(hasLabelFilter(q, 'level', 'error', '!=')).toBe(false);
    expect(hasLabelFilter(q, 'level', 'warn')).toBe(false);
    expect(hasLabelFilter(q, 'host', 'web-1', '!=')).toBe(true);
  });

  it('removes a filter with its leading space', () => {
    expect(removeLabelFilter(q, 'level', 'error')).toBe('{a="b"} | json | host!="web-1"');
  });

  it('toggles: add, remove, and replace the opposite', () => {
    expect(toggleLabelFilter('{a="b"}', 'level', 'error', '=')).toBe('{a="b"} | level="error"');
    expect(toggleLabelFilter(q, 'level', 'error', '=')).toBe('{a="b"} | json | host!="web-1"');
    expect(toggleLabelFilter(q, 'level', 'error', '!=')).toBe('{a="b"} | json | host!="web-1" | level!="error"');
  });
});

describe('stream matchers', () => {
  it('finds a matcher only with the same label, operator and value', () => {
    expect(hasMatcher('{job="api", env="prod"} | json', 'env', '=', 'prod')).toBe(true);
    expect(hasMatcher('{job="api", env="prod"}', 'env', '!=', 'prod')).toBe(false);
    expect(hasMatcher('{job="api"} | env="prod"', 'env', '=', 'prod')).toBe(false);
  });

  it('removes a matcher with its comma, wherever it stands, but never empties a selector', () => {
    expect(removeMatcher('{env="prod", job="api", a="b"}', 'job', '=', 'api')).toBe('{env="prod", a="b"}');
    expect(removeMatcher('{job="api", env="prod"}', 'job', '=', 'api')).toBe('{env="prod"}');
    expect(removeMatcher('{env="prod", job="api"} |= "x"', 'job', '=', 'api')).toBe('{env="prod"} |= "x"');
    expect(removeMatcher('{job="api"}', 'job', '=', 'api')).toBe('{job="api"}');
    expect(removeMatcher('rate({a="b", job="api"}[1m]) / rate({job="api", c="d"}[1m])', 'job', '=', 'api')).toBe(
      'rate({a="b"}[1m]) / rate({c="d"}[1m])'
    );
  });

  it('toggles: add, remove, and replace the opposite', () => {
    expect(toggleMatcher('{job="api"}', 'env', 'prod', '=')).toBe('{job="api", env="prod"}');
    expect(toggleMatcher('{job="api", env="prod"}', 'env', 'prod', '=')).toBe('{job="api"}');
    expect(toggleMatcher('{job="api", env="prod"}', 'env', 'prod', '!=')).toBe('{job="api", env!="prod"}');
  });
});

describe('ad-hoc filters', () => {
  it('adds matchers to every selector', () => {
    expect(addMatcher('rate({a="b"}[1m]) + rate({}[1m])', 'env', '=', 'prod')).toBe(
      'rate({a="b", env="prod"}[1m]) + rate({env="prod"}[1m])'
    );
  });

  it('does not add a matcher twice', () => {
    expect(addMatcher('{env="prod"}', 'env', '=', 'prod')).toBe('{env="prod"}');
  });

  it('maps each operator to a matcher or a label filter', () => {
    expect(
      applyAdHocFilters('{job="api"}', [
        { key: 'env', operator: '=', value: 'prod' },
        { key: 'host', operator: '!~', value: 'test-.*' },
        { key: 'status', operator: '>', value: '499' },
        { key: 'region', operator: '=|', value: '', values: ['eu.1', 'us'] },
        { key: 'bad key', operator: '=', value: 'x' },
        { key: 'x', operator: 'unknown', value: 'y' },
      ])
    ).toBe('{job="api", env="prod", host!~"test-.*", region=~"eu\\\\.1|us"} | status>499');
  });

  it('leaves the query alone without filters', () => {
    expect(applyAdHocFilters('{a="b"}', undefined)).toBe('{a="b"}');
    expect(applyAdHocFilters('', [{ key: 'a', operator: '=', value: 'b' }])).toBe('');
  });
});

describe('query kinds', () => {
  it('tells metric queries from log queries', () => {
    expect(isMetricQuery('{a="b"} |= "x"')).toBe(false);
    expect(isMetricQuery('# note\n{a="b"}')).toBe(false);
    expect(isMetricQuery('sum(rate({a="b"}[1m]))')).toBe(true);
    expect(isMetricQuery('')).toBe(false);
  });

  it('takes the log query out of a metric query', () => {
    expect(firstLogQuery('sum by (l) (count_over_time({a="b"} |= "x" | json [5m]))')).toBe('{a="b"} |= "x" | json');
    expect(firstLogQuery('vector(1)')).toBeUndefined();
  });
});
