import {
  AnnotationQuery,
  createDataFrame,
  DataQueryRequest,
  DataFrame,
  dataFrameToJSON,
  FieldType,
  LoadingState,
  LogLevel,
  LogRowContextQueryDirection,
  LogRowModel,
  StreamingFrameAction,
  SupplementaryQueryType,
  VariableSupportType,
} from '@grafana/data';
import {
  GrafanaLiveSrv,
  LiveDataStreamOptions,
  setDataSourceSrv,
  DataSourceSrv,
  setGrafanaLiveSrv,
} from '@grafana/runtime';
import { firstValueFrom, lastValueFrom, Observable, of, toArray } from 'rxjs';

import { hashOf, variableFormatter } from '../datasource';
import { fakeBackend, fakeTemplateSrv, newDatasource, RANGE, request } from '../testing/fixtures';
import { LogsiftQuery, LogsiftVariableQuery } from '../types';
import { LogsiftVariableSupport } from '../variableSupport';

function logsFrame(lines: string[], labels: Array<Record<string, string>>): DataFrame {
  return createDataFrame({
    refId: 'A',
    meta: { preferredVisualisationType: 'logs' },
    fields: [
      { name: 'timestamp', type: FieldType.time, values: lines.map((_, i) => 1_700_000_000_000 + i * 1000) },
      { name: 'body', type: FieldType.string, values: lines },
      { name: 'labels', type: FieldType.other, values: labels },
    ],
  });
}

function resourcePath(url: string | undefined) {
  return (url ?? '').replace('/api/datasources/uid/logsift-uid/resources/', '');
}

beforeEach(() => {
  fakeTemplateSrv({ job: { value: 'api' }, hosts: { value: ['web.1', 'web.2'], multi: true } });
});

describe('interpolateVariablesInQueries', () => {
  it('writes variables and ad-hoc filters into queries opened in Explore', () => {
    const [q] = newDatasource().interpolateVariablesInQueries(
      [{ refId: 'A', expr: '{job="$job"}', workspace: '$job' }],
      {},
      [{ key: 'env', operator: '=', value: 'prod' }]
    );
    expect(q).toMatchObject({
      expr: '{job="api", env="prod"}',
      workspace: 'api',
      datasource: { type: 'logsift-datasource', uid: 'logsift-uid' },
    });
  });
});

describe('applyTemplateVariables', () => {
  it('escapes single values as strings and multi values as a literal regex', () => {
    const ds = newDatasource();
    const q = ds.applyTemplateVariables({ refId: 'A', expr: '{job="$job", host=~"$hosts"}' }, {});
    expect(q.expr).toBe('{job="api", host=~"web\\\\.1|web\\\\.2"}');
  });

  it('applies ad-hoc filters to every selector and interpolates the other fields', () => {
    const ds = newDatasource();
    const q = ds.applyTemplateVariables(
      { refId: 'A', expr: 'sum(rate({job="x"}[5m]))', workspace: '$job', legendFormat: '{{$job}}' },
      {},
      [{ key: 'env', operator: '=', value: 'prod' }]
    );
    expect(q.expr).toBe('sum(rate({job="x", env="prod"}[5m]))');
    expect(q.workspace).toBe('api');
    expect(q.legendFormat).toBe('{{api}}');
  });

  it('leaves the interval variables for the server', () => {
    const ds = newDatasource();
    expect(ds.applyTemplateVariables({ refId: 'A', expr: 'rate({a="b"}[$__auto])' }, {}).expr).toBe(
      'rate({a="b"}[$__auto])'
    );
  });
});

describe('variableFormatter', () => {
  it('treats include-all variables like multi-value ones', () => {
    expect(variableFormatter(['a.b'], { includeAll: true })).toBe('a\\\\.b');
    expect(variableFormatter('a.b', {})).toBe('a.b');
  });
});

describe('query', () => {
  it('sends interpolated queries to the backend and adds derived fields to logs frames', async () => {
    const requests = fakeBackend(() => ({
      data: {
        results: {
          A: {
            frames: [dataFrameToJSON(logsFrame(['done traceID=abc123', 'no trace'], [{ job: 'api' }, { job: 'api' }]))],
          },
        },
      },
    }));
    const ds = newDatasource({
      derivedFields: [{ name: 'TraceID', matcherRegex: 'traceID=(\\w+)', url: 'https://t.example/${__value.raw}' }],
    });
    const res = await lastValueFrom(ds.query(request([{ refId: 'A', expr: '{job="$job"}', queryType: 'range' }])));

    expect(requests).toHaveLength(1);
    expect(requests[0].url).toMatch(/^\/api\/ds\/query/);
    const sent = (requests[0].data as { queries: LogsiftQuery[] }).queries;
    expect(sent[0]).toMatchObject({ refId: 'A', expr: '{job="api"}', queryType: 'range' });

    const frame: DataFrame = res.data[0];
    const trace = frame.fields.find((f) => f.name === 'TraceID');
    expect(trace?.values).toEqual(['abc123', null]);
    expect(trace?.config.links?.[0]).toMatchObject({ url: 'https://t.example/${__value.raw}' });
  });

  it('skips hidden and empty queries', async () => {
    const requests = fakeBackend(() => ({ data: { results: {} } }));
    const ds = newDatasource();
    const res = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', expr: '' },
          { refId: 'B', expr: '{a="b"}', hide: true },
        ])
      )
    );
    expect(requests).toHaveLength(0);
    expect(res.data).toEqual([]);
  });

  it('streams search queries and live tails through Grafana Live, with a stable channel per tail', async () => {
    fakeBackend(() => ({ data: { results: {} } }));
    const subscriptions: LiveDataStreamOptions[] = [];
    setGrafanaLiveSrv({
      getDataStream: (opts: LiveDataStreamOptions) => {
        subscriptions.push(opts);
        return of({ data: [logsFrame(['streamed'], [{ job: 'api' }])] });
      },
    } as unknown as GrafanaLiveSrv);
    const ds = newDatasource({ maxLines: 500 });

    await firstValueFrom(
      ds.query(request([{ refId: 'A', expr: '{job="$job"}', queryType: 'stream', workspace: 'case-1' }]))
    );
    expect(subscriptions[0].addr).toMatchObject({ scope: 'ds', stream: 'logsift-uid', namespace: 'logsift-uid' });
    expect(subscriptions[0].addr.path).toMatch(/^search\/[0-9a-f]{16}$/);
    expect(subscriptions[0].addr.data).toEqual({
      refId: 'A',
      expr: '{job="api"}',
      workspace: 'case-1',
      maxLines: 500,
      direction: undefined,
      from: RANGE.from.valueOf(),
      to: RANGE.to.valueOf(),
      run: 'req-1',
    });

    const tail = () =>
      ds.query(
        request([{ refId: 'A', expr: '{job="api"}' }], { liveStreaming: true, requestId: String(Math.random()) })
      );
    await firstValueFrom(tail());
    await firstValueFrom(tail());
    expect(subscriptions[1].addr.path).toMatch(/^tail\//);
    expect(subscriptions[2].addr.path).toBe(subscriptions[1].addr.path);
    expect(subscriptions[1].addr.data).not.toHaveProperty('from');
  });

  it('ends a streaming search when the backend says it is done, with its progress as a notice', async () => {
    fakeBackend(() => ({ data: { results: {} } }));
    const progress = (done: boolean, linesSent: number) => ({
      done,
      limitReached: false,
      rangeCovered: done ? 1 : 0.25,
      chunksCovered: done ? 1 : 0.25,
      chunksScanned: done ? 8 : 2,
      chunksTotal: 8,
      bytesScanned: done ? 8000 : 2000,
      bytesTotal: 8000,
      linesMatched: linesSent,
      linesSent,
      slice: 1,
    });
    const message = (done: boolean, lines: number) => {
      const frame = logsFrame(['x'], [{ job: 'api' }]);
      frame.meta = { ...frame.meta, custom: { progress: progress(done, lines) } };
      return { data: [frame] };
    };
    let unsubscribed = false;
    setGrafanaLiveSrv({
      getDataStream: () =>
        new Observable((sub) => {
          sub.next(message(false, 1));
          sub.next(message(true, 2));
          // Never sent: the search is over and the frontend has left the channel.
          sub.next(message(false, 99));
          return () => {
            unsubscribed = true;
          };
        }),
    } as unknown as GrafanaLiveSrv);
    const all = await lastValueFrom(
      newDatasource()
        .query(request([{ refId: 'A', expr: '{job="api"}', queryType: 'stream' }]))
        .pipe(toArray())
    );
    expect(all.map((r) => r.state)).toEqual([LoadingState.Streaming, LoadingState.Done]);
    expect(all[0].data[0].meta.notices[0].text).toContain('25% of the time range, 1 line so far');
    expect(all[1].data[0].meta.notices[0].text).toContain('Search: done');
    expect(unsubscribed).toBe(true);
  });

  it('runs a metric query asked to stream as a range query', async () => {
    const requests = fakeBackend(() => ({ data: { results: { A: { frames: [] } } } }));
    const getDataStream = jest.fn();
    setGrafanaLiveSrv({ getDataStream } as unknown as GrafanaLiveSrv);
    await lastValueFrom(
      newDatasource().query(request([{ refId: 'A', expr: 'rate({a="b"}[1m])', queryType: 'stream' }]))
    );
    expect(getDataStream).not.toHaveBeenCalled();
    expect(requests).toHaveLength(1);
  });

  it('follows import progress through the imports channel, one row per run', async () => {
    const requests = fakeBackend(() => ({ data: { results: {} } }));
    const subscriptions: LiveDataStreamOptions[] = [];
    // The channel's buffer: the backend sends one row per state of a run.
    const frame = createDataFrame({
      refId: 'P',
      fields: [
        { name: 'time', type: FieldType.time, values: [1, 2, 3, 4] },
        { name: 'run_id', type: FieldType.string, values: ['r1', 'r2', 'r1', 'r1'] },
        { name: 'status', type: FieldType.string, values: ['running', 'running', 'running', 'completed'] },
        { name: 'percent', type: FieldType.number, values: [10, 50, 60, 100] },
      ],
    });
    setGrafanaLiveSrv({
      getDataStream: (opts: LiveDataStreamOptions) => {
        subscriptions.push(opts);
        return of({ data: [frame], state: LoadingState.Streaming });
      },
    } as unknown as GrafanaLiveSrv);
    const ds = newDatasource();
    const target: LogsiftQuery = { refId: 'P', expr: '', queryType: 'imports', workspace: '$job' };
    expect(ds.filterQuery(target)).toBe(true);
    expect(ds.getQueryDisplayText(target)).toBe('Import progress: $job');
    expect(ds.targetContainsTemplate(target)).toBe(true);

    const res = await firstValueFrom(ds.query(request([target])));
    expect(requests).toHaveLength(0);
    expect(subscriptions).toHaveLength(1);
    const { addr, buffer } = subscriptions[0];
    expect(addr).toMatchObject({ scope: 'ds', stream: 'logsift-uid' });
    expect(addr.path).toMatch(/^imports\/[0-9a-f]{16}$/);
    // The workspace variable is resolved; the start is the range's, to the minute.
    expect(addr.data).toEqual({ refId: 'P', workspace: 'api', from: 1_699_999_980_000 });
    expect(buffer).toMatchObject({ action: StreamingFrameAction.Append });
    const rows = res.data[0] as DataFrame;
    expect(rows.length).toBe(2);
    expect(rows.fields[1].values).toEqual(['r2', 'r1']);
    expect(rows.fields[2].values).toEqual(['running', 'completed']);
    expect(rows.fields[3].values).toEqual([50, 100]);

    // Every workspace: no workspace in the subscription, another channel.
    await firstValueFrom(ds.query(request([{ ...target, workspace: undefined }])));
    expect(subscriptions[1].addr.data).toEqual({ refId: 'P', from: 1_699_999_980_000 });
    expect(subscriptions[1].addr.path).not.toBe(addr.path);
  });

  it('runs normal and streamed queries of one request side by side', async () => {
    fakeBackend(() => ({ data: { results: { A: { frames: [] } } } }));
    setGrafanaLiveSrv({ getDataStream: () => of({ data: [], key: 'B' }) } as unknown as GrafanaLiveSrv);
    const ds = newDatasource();
    const all = await lastValueFrom(
      ds
        .query(
          request([
            { refId: 'A', expr: '{a="b"}' },
            { refId: 'B', expr: '{a="b"}', queryType: 'stream' },
          ])
        )
        .pipe(toArray())
    );
    expect(all).toHaveLength(2);
  });
});

describe('resources', () => {
  it('asks for labels and values with the time range in nanoseconds and caches answers', async () => {
    const requests = fakeBackend((req) => {
      const path = resourcePath(req.url);
      if (path === 'labels') {
        return { data: ['job', 'env'] };
      }
      return { data: { status: 'success', data: ['api', 'web'] } };
    });
    const ds = newDatasource();
    expect(await ds.getLabelNames({ range: RANGE })).toEqual(['job', 'env']);
    expect(await ds.getLabelNames({ range: RANGE })).toEqual(['job', 'env']);
    expect(await ds.getLabelValues('job', { selector: '{env="prod"}', range: RANGE })).toEqual(['api', 'web']);
    expect(requests.map((r) => resourcePath(r.url))).toEqual(['labels', 'label/job/values']);
    expect(requests[0].params).toEqual({ start: '1700000000000000000', end: '1700003600000000000' });
    expect(requests[1].params).toMatchObject({ query: '{env="prod"}' });
  });

  it('reads workspaces in the shapes the backend may send', async () => {
    fakeBackend(() => ({ data: { workspaces: [{ name: 'case-4711' }, { id: 'hosts' }, 'plain', { other: 1 }] } }));
    expect(await newDatasource().getWorkspaces()).toEqual(['case-4711', 'hosts', 'plain']);
    fakeBackend(() => ({ data: { data: ['b', 'a'] } }));
    expect(await newDatasource().getWorkspaces()).toEqual(['a', 'b']);
  });

  it('lists the workspaces of the last 30 days and of an older time range', async () => {
    const requests = fakeBackend((req) => ({
      data: {
        data: Number((req.params as { start: string }).start) < Date.now() - 40 * 86400_000 ? ['old', 'x'] : ['x'],
      },
    }));
    // RANGE is in November 2023: an imported bundle of that time.
    expect(await newDatasource().getWorkspaces(RANGE)).toEqual(['old', 'x']);
    expect(requests.map((r) => resourcePath(r.url))).toEqual(['workspaces', 'workspaces']);
    const [recent, old] = requests.map((r) => r.params as { start: string; end: string });
    expect(Number(recent.end) - Number(recent.start)).toBe(30 * 86400_000);
    expect(old).toEqual({ start: String(RANGE.from.valueOf()), end: String(RANGE.to.valueOf()) });
  });

  it('scopes label lookups to a workspace', async () => {
    const requests = fakeBackend(() => ({ data: { data: ['job'] } }));
    const ds = newDatasource();
    await ds.completionProvider(RANGE, 'case-1').labelNames('{a="b"}');
    expect(requests[0].params).toMatchObject({ query: '{a="b"}', workspace: 'case-1' });
  });

  it('reads the formatted query', async () => {
    fakeBackend(() => ({ data: { expr: '{a="b"} |= "x"' } }));
    expect(await newDatasource().format('{a="b"}|="x"')).toBe('{a="b"} |= "x"');
  });

  it('asks for an estimate of the interpolated query', async () => {
    const requests = fakeBackend(() => ({ data: { streams: 2, chunks: 14, entries: 1000, bytes: 3_400_000 } }));
    const est = await newDatasource().estimate(
      { refId: 'A', expr: 'rate({job="$job"}[$__auto])', workspace: 'w1' },
      RANGE
    );
    expect(est.chunks).toBe(14);
    expect(resourcePath(requests[0].url)).toBe('cost');
    expect(requests[0].params).toMatchObject({
      expr: 'rate({job="api"}[1m])',
      workspace: 'w1',
      start: '1700000000000000000',
    });
  });

  it('validates through the format resource and keeps the substitution map for markers', async () => {
    fakeBackend((req) =>
      (req.params as { expr: string }).expr.includes('jsn')
        ? { status: 400, data: { message: 'parse error at line 1, col 17: unknown stage "jsn"' } }
        : { data: { query: 'ok' } }
    );
    const ds = newDatasource();
    expect(await ds.validate('{job="$job"} | json')).toBeUndefined();
    const problem = await ds.validate('{job="$job"} | jsn');
    expect(problem?.message).toBe('parse error at line 1, col 17: unknown stage "jsn"');
    expect(problem?.interpolated.text).toBe('{job="api"} | jsn');
    expect(problem?.interpolated.mapOffset(14)).toEqual({ start: 15, end: 15 });
  });

  it('unwraps a server error body the backend passed through as text', async () => {
    const body = JSON.stringify({ status: 'error', error: 'parse error at line 1, col 2: unexpected "}"' });
    fakeBackend(() => ({ status: 400, data: { error: body, message: body } }));
    expect((await newDatasource().validate('{}'))?.message).toBe('parse error at line 1, col 2: unexpected "}"');
  });

  it('does not report a query as wrong when the server cannot be asked', async () => {
    fakeBackend(() => ({ status: 502, data: 'bad gateway' }));
    expect(await newDatasource().validate('{a="b"}')).toBeUndefined();
    fakeBackend(() => ({ status: 400, data: { message: 'datasource settings: url is required' } }));
    expect(await newDatasource().validate('{a="b"}')).toBeUndefined();
  });
});

describe('template variable queries', () => {
  it('runs label_names, label_values and workspaces', async () => {
    const requests = fakeBackend((req) => {
      const path = resourcePath(req.url);
      return { data: path === 'workspaces' ? ['w1'] : path === 'labels' ? ['job'] : ['api', 'web'] };
    });
    const ds = newDatasource();
    expect(await ds.metricFindQuery('label_names()')).toEqual([{ text: 'job', value: 'job' }]);
    expect(await ds.metricFindQuery('label_values({env="$job"}, job)', { range: RANGE })).toEqual([
      { text: 'api', value: 'api' },
      { text: 'web', value: 'web' },
    ]);
    expect(await ds.metricFindQuery({ query: 'workspaces()' })).toEqual([{ text: 'w1', value: 'w1' }]);
    expect(requests[1].params).toMatchObject({ query: '{env="api"}' });
    await expect(ds.metricFindQuery('nonsense')).rejects.toThrow('Unsupported variable query');
  });

  it('runs the variable editor model through the datasource variable support', async () => {
    const requests = fakeBackend((req) => {
      const path = resourcePath(req.url);
      return { data: { data: path === 'label/job/values' ? ['api', 'web'] : ['job', 'env'] } };
    });
    const ds = newDatasource();
    const support = ds.variables as LogsiftVariableSupport;
    expect(support.getType()).toBe(VariableSupportType.Custom);
    const res = await lastValueFrom(
      support.query({
        ...request([]),
        targets: [{ refId: 'V', type: 'labelValues', label: 'job', stream: '{env="$job"}' }],
      } as unknown as DataQueryRequest<LogsiftVariableQuery>)
    );
    expect(res.data).toEqual([
      { text: 'api', value: 'api' },
      { text: 'web', value: 'web' },
    ]);
    expect(resourcePath(requests[0].url)).toBe('label/job/values');
    expect(requests[0].params).toMatchObject({ query: '{env="api"}', start: '1700000000000000000' });

    // Older dashboards keep the text query.
    const legacy = await lastValueFrom(
      support.query({ ...request([]), targets: ['label_names()'] } as unknown as DataQueryRequest<LogsiftVariableQuery>)
    );
    expect(legacy.data).toEqual([
      { text: 'job', value: 'job' },
      { text: 'env', value: 'env' },
    ]);
    await expect(ds.metricFindQuery({ refId: 'V', type: 'labelValues' })).rejects.toThrow('Unsupported variable query');
  });

  it('serves ad-hoc filter keys and values narrowed by the other filters', async () => {
    const requests = fakeBackend((req) => ({ data: resourcePath(req.url) === 'labels' ? ['job', 'env'] : ['prod'] }));
    const ds = newDatasource();
    expect(await ds.getTagKeys({ filters: [] })).toEqual([{ text: 'job' }, { text: 'env' }]);
    expect(
      await ds.getTagValues({
        key: 'env',
        filters: [
          { key: 'job', operator: '=', value: 'api' },
          { key: 'env', operator: '=', value: 'old' },
          { key: 'n', operator: '>', value: '1' },
        ],
      })
    ).toEqual([{ text: 'prod' }]);
    expect(requests[1].params).toEqual({ query: '{job="api"}' });
  });
});

describe('log details filters', () => {
  const ds = newDatasource();
  const q: LogsiftQuery = { refId: 'A', expr: '{job="api"} | json' };

  it('adds filters for and against a value, replacing the opposite', () => {
    const forIt = ds.modifyQuery(q, { type: 'ADD_FILTER', options: { key: 'level', value: 'error' } });
    expect(forIt.expr).toBe('{job="api"} | json | level="error"');
    expect(ds.modifyQuery(forIt, { type: 'ADD_FILTER', options: { key: 'level', value: 'error' } }).expr).toBe(
      forIt.expr
    );
    expect(ds.modifyQuery(forIt, { type: 'ADD_FILTER_OUT', options: { key: 'level', value: 'error' } }).expr).toBe(
      '{job="api"} | json | level!="error"'
    );
  });

  it('adds line filters from selected text', () => {
    expect(ds.modifyQuery(q, { type: 'ADD_STRING_FILTER', options: { value: 'boom' } }).expr).toBe(
      '{job="api"} |= "boom" | json'
    );
    expect(ds.modifyQuery(q, { type: 'ADD_STRING_FILTER_OUT', options: { value: 'boom' } }).expr).toBe(
      '{job="api"} != "boom" | json'
    );
    expect(ds.getSupportedQueryModifications()).toContain('ADD_FILTER_OUT');
  });

  it('toggles filters and reports which are active', () => {
    const on = ds.toggleQueryFilter(q, { type: 'FILTER_FOR', options: { key: 'level', value: 'warn' } });
    expect(ds.queryHasFilter(on, { key: 'level', value: 'warn' })).toBe(true);
    const off = ds.toggleQueryFilter(on, { type: 'FILTER_FOR', options: { key: 'level', value: 'warn' } });
    expect(off.expr).toBe(q.expr);
    expect(ds.queryHasFilter(off, { key: 'level', value: 'warn' })).toBe(false);
  });

  it('filters stream labels (label type I) in the stream selector, others in the pipeline', () => {
    // The backend's logs frame: labelTypes says which labels are stream labels.
    const frame = createDataFrame({
      fields: [
        { name: 'body', type: FieldType.string, values: ['x'] },
        { name: 'labels', type: FieldType.other, values: [{ job: 'api', host: 'web-1', level: 'warn' }] },
        { name: 'labelTypes', type: FieldType.other, values: [{ job: 'I', host: 'I', level: 'P' }] },
      ],
    });
    const on = ds.toggleQueryFilter(q, { type: 'FILTER_FOR', options: { key: 'host', value: 'web-1' }, frame });
    expect(on.expr).toBe('{job="api", host="web-1"} | json');
    expect(ds.queryHasFilter(on, { key: 'host', value: 'web-1' })).toBe(true);
    expect(ds.toggleQueryFilter(on, { type: 'FILTER_FOR', options: { key: 'host', value: 'web-1' }, frame }).expr).toBe(
      q.expr
    );
    expect(ds.toggleQueryFilter(on, { type: 'FILTER_OUT', options: { key: 'host', value: 'web-1' }, frame }).expr).toBe(
      '{job="api", host!="web-1"} | json'
    );
    expect(ds.toggleQueryFilter(q, { type: 'FILTER_FOR', options: { key: 'level', value: 'warn' }, frame }).expr).toBe(
      '{job="api"} | json | level="warn"'
    );
    expect(ds.modifyQuery(q, { type: 'ADD_FILTER_OUT', options: { key: 'host', value: 'web-1' }, frame }).expr).toBe(
      '{job="api", host!="web-1"} | json'
    );
  });
});

describe('supplementary queries', () => {
  const ds = newDatasource();

  it('builds a logs volume query by detected level for log queries only', () => {
    expect(
      ds.getSupplementaryQuery(
        { type: SupplementaryQueryType.LogsVolume },
        { refId: 'A', expr: '{job="api"} |= "x" # why' }
      )
    ).toEqual({
      refId: 'log-volume-A',
      expr: 'sum by (detected_level) (count_over_time({job="api"} |= "x" [$__auto]))',
      queryType: 'range',
      workspace: undefined,
      supportingQueryType: 'logsVolume',
    });
    expect(
      ds.getSupplementaryQuery({ type: SupplementaryQueryType.LogsVolume }, { refId: 'A', expr: 'rate({a="b"}[1m])' })
    ).toBeUndefined();
  });

  it('builds a logs sample from the log query inside a metric query', () => {
    expect(
      ds.getSupplementaryQuery(
        { type: SupplementaryQueryType.LogsSample, limit: 20 },
        { refId: 'B', expr: 'sum(rate({a="b"} | json [1m]))', workspace: 'w' }
      )
    ).toEqual({
      refId: 'log-sample-B',
      expr: '{a="b"} | json',
      queryType: 'range',
      maxLines: 20,
      workspace: 'w',
      supportingQueryType: 'logsSample',
    });
    expect(
      ds.getSupplementaryQuery({ type: SupplementaryQueryType.LogsSample }, { refId: 'B', expr: '{a="b"}' })
    ).toBeUndefined();
  });

  it('wraps them in a request, or none when no query qualifies', () => {
    const req = ds.getSupplementaryRequest(
      SupplementaryQueryType.LogsVolume,
      request([{ refId: 'A', expr: '{a="b"}' }], { liveStreaming: true })
    );
    expect(req?.targets.map((t) => t.refId)).toEqual(['log-volume-A']);
    expect(req?.liveStreaming).toBe(false);
    expect(
      ds.getSupplementaryRequest(SupplementaryQueryType.LogsVolume, request([{ refId: 'A', expr: '', hide: true }]))
    ).toBeUndefined();
    expect(ds.getSupportedSupplementaryQueryTypes()).toEqual([
      SupplementaryQueryType.LogsVolume,
      SupplementaryQueryType.LogsSample,
    ]);
  });
});

describe('log context', () => {
  function row(): LogRowModel {
    const frame = createDataFrame({
      refId: 'A',
      fields: [
        { name: 'timestamp', type: FieldType.time, values: [1_700_000_000_000] },
        { name: 'body', type: FieldType.string, values: ['hit'] },
        { name: 'labels', type: FieldType.other, values: [{ job: 'api', file: 'a.log', level: 'error' }] },
        { name: 'labelTypes', type: FieldType.other, values: [{ job: 'I', file: 'I', level: 'S' }] },
        { name: 'id', type: FieldType.string, values: ['row-7'] },
      ],
    });
    return {
      dataFrame: frame,
      rowIndex: 0,
      entryFieldIndex: 1,
      entry: 'hit',
      raw: 'hit',
      labels: { job: 'api', file: 'a.log', level: 'error' },
      timeEpochMs: 1_700_000_000_000,
      timeEpochNs: '1700000000000000123',
      logLevel: LogLevel.error,
      hasAnsi: false,
      hasUnescapedContent: false,
      timeFromNow: '',
      timeLocal: '',
      timeUtc: '',
      uid: 'A_0',
    };
  }

  it('posts the row to the context resource and shows the lines before it', async () => {
    const requests = fakeBackend(() => ({
      data: {
        before: dataFrameToJSON(logsFrame(['before'], [{ job: 'api' }])),
        after: dataFrameToJSON(logsFrame(['after'], [{}])),
        method: 'line',
      },
    }));
    const res = await newDatasource().getLogRowContext(
      row(),
      { direction: LogRowContextQueryDirection.Backward, limit: 5 },
      { refId: 'A', expr: '', workspace: 'w' }
    );
    expect(resourcePath(requests[0].url)).toBe('context');
    expect(requests[0].method).toBe('POST');
    expect(requests[0].data).toEqual({
      ts: '1700000000000000123',
      labels: { job: 'api', file: 'a.log', level: 'error' },
      labelTypes: { job: 'I', file: 'I', level: 'S' },
      body: 'hit',
      before: 5,
      after: 0,
      workspace: 'w',
    });
    expect(res.data).toHaveLength(1);
    expect(res.data[0].fields[1].values).toEqual(['before']);
  });

  it('asks for the lines after the row going forward', async () => {
    const requests = fakeBackend(() => ({
      data: { before: dataFrameToJSON(logsFrame([], [])), after: dataFrameToJSON(logsFrame(['after'], [{}])) },
    }));
    const res = await newDatasource().getLogRowContext(row(), { direction: LogRowContextQueryDirection.Forward });
    expect(requests[0].data).toMatchObject({ before: 0, after: 10 });
    expect(res.data[0].fields[1].values).toEqual(['after']);
  });

  it('gives a context query for opening in a split view', async () => {
    const q = await newDatasource().getLogRowContextQuery(
      row(),
      { limit: 50, direction: LogRowContextQueryDirection.Forward },
      { refId: 'A', expr: '' }
    );
    expect(q).toMatchObject({
      expr: '{job="api", file="a.log"}',
      maxLines: 50,
      direction: 'forward',
      refId: 'context-A',
    });
  });
});

describe('annotations', () => {
  it('turns each log line into an annotation and skips metric queries', async () => {
    const ds = newDatasource();
    const anno = {
      enable: true,
      name: 'errors',
      iconColor: 'red',
      target: { refId: 'Anno', expr: '{job="api"} |= "error"' },
    } as AnnotationQuery<LogsiftQuery>;
    expect(ds.annotations?.prepareQuery?.(anno)).toMatchObject({
      expr: '{job="api"} |= "error"',
      queryType: 'range',
      maxLines: 100,
    });
    expect(
      ds.annotations?.prepareQuery?.({ ...anno, target: { refId: 'A', expr: 'rate({a="b"}[1m])' } })
    ).toBeUndefined();

    const events = await firstValueFrom(
      ds.annotations!.processEvents!(anno, [
        logsFrame(['first error', 'second'], [{ job: 'api', __stream_shard__: '1' }, { job: 'web' }]),
      ])
    );
    expect(events).toEqual([
      { time: 1_700_000_000_000, text: 'first error', tags: ['api'] },
      { time: 1_700_000_001_000, text: 'second', tags: ['web'] },
    ]);
  });

  it('migrates annotations saved with a top-level expression', () => {
    const ds = newDatasource();
    const migrated = ds.annotations!.prepareAnnotation!({
      enable: true,
      name: 'a',
      iconColor: 'red',
      expr: '{a="b"}',
    } as unknown as AnnotationQuery<LogsiftQuery>);
    expect(migrated.target).toMatchObject({ expr: '{a="b"}' });
  });
});

describe('derived fields with internal links', () => {
  it('links to another datasource by uid with its name', async () => {
    fakeBackend(() => ({ data: { results: { A: { frames: [dataFrameToJSON(logsFrame(['trace=ff01'], [{}]))] } } } }));
    setDataSourceSrv({
      getInstanceSettings: (uid: string) => (uid === 'tempo-1' ? { name: 'Tempo', type: 'tempo' } : undefined),
    } as unknown as DataSourceSrv);
    const ds = newDatasource({
      derivedFields: [{ name: 'trace', matcherRegex: 'trace=(\\w+)', url: '${__value.raw}', datasourceUid: 'tempo-1' }],
    });
    const res = await lastValueFrom(ds.query(request([{ refId: 'A', expr: '{a="b"}' }])));
    const link = res.data[0].fields.find((f: { name: string }) => f.name === 'trace').config.links[0];
    expect(link.internal).toEqual({
      query: { refId: 'A', query: '${__value.raw}', queryType: 'traceql' },
      datasourceUid: 'tempo-1',
      datasourceName: 'Tempo',
    });
  });
});

describe('hashOf', () => {
  it('is stable, hex and spreads similar inputs', () => {
    expect(hashOf('abc')).toBe(hashOf('abc'));
    expect(hashOf('abc')).toMatch(/^[0-9a-f]{16}$/);
    expect(hashOf('abc')).not.toBe(hashOf('abd'));
  });
});

describe('defaults', () => {
  it('starts new queries in the builder with a range query', () => {
    const ds = newDatasource({ maxLines: 250 });
    expect(ds.getDefaultQuery('explore' as never)).toEqual({ expr: '', queryType: 'range', editorMode: 'builder' });
    expect(ds.defaultMaxLines()).toBe(250);
    expect(newDatasource().defaultMaxLines()).toBe(1000);
    expect(ds.filterQuery({ refId: 'A', expr: '  ' })).toBe(false);
    expect(ds.targetContainsTemplate({ refId: 'A', expr: '{a="$x"}' })).toBe(true);
  });
});
