import { CompletionDataProvider, getCompletionContext, getCompletionItems } from '../completion';

/** The situation with the cursor at `|` in the text. */
function at(textWithCursor: string) {
  const cursor = textWithCursor.indexOf('¦');
  const text = textWithCursor.replace('¦', '');
  return getCompletionContext(text, cursor);
}

describe('getCompletionContext', () => {
  it('suggests label names at the start of a selector and after a comma', () => {
    expect(at('{¦').situation).toEqual({ type: 'LABEL_NAME', otherMatchers: [] });
    expect(at('{job="api", ¦').situation).toEqual({
      type: 'LABEL_NAME',
      otherMatchers: [{ label: 'job', op: '=', value: 'api' }],
    });
  });

  it('replaces the label name being typed', () => {
    const ctx = at('{job="api", ho¦');
    expect(ctx.situation.type).toBe('LABEL_NAME');
    expect(ctx.wordStart).toBe('{job="api", '.length);
  });

  it('suggests values after a matcher operator, quoted or inside quotes', () => {
    expect(at('{job=¦').situation).toEqual({
      type: 'LABEL_VALUE',
      label: 'job',
      otherMatchers: [],
      betweenQuotes: false,
    });
    const inside = at('{env="prod", job=~"ap¦');
    expect(inside.situation).toEqual({
      type: 'LABEL_VALUE',
      label: 'job',
      otherMatchers: [{ label: 'env', op: '=', value: 'prod' }],
      betweenQuotes: true,
    });
    expect(inside.wordStart).toBe('{env="prod", job=~"'.length);
  });

  it('suggests pipeline operators after a selector or a finished stage', () => {
    expect(at('{job="api"} ¦').situation).toEqual({
      type: 'AFTER_PIPELINE',
      selector: [{ label: 'job', op: '=', value: 'api' }],
    });
    expect(at('{job="api"} |= "x" ¦').situation.type).toBe('AFTER_PIPELINE');
    expect(at('{job="api"} | json ¦').situation.type).toBe('AFTER_PIPELINE');
  });

  it('suggests parsers and labels after a pipe', () => {
    expect(at('{job="api"} |= "x" | ¦').situation).toEqual({
      type: 'PIPE_STAGE',
      selector: [{ label: 'job', op: '=', value: 'api' }],
    });
    expect(at('{job="api"} | js¦').situation.type).toBe('PIPE_STAGE');
  });

  it('stays quiet where a free argument is typed', () => {
    expect(at('{job="api"} |= ¦').situation.type).toBe('NONE');
    expect(at('{job="api"} |= "time¦').situation.type).toBe('NONE');
    expect(at('{job="api"} | pattern ¦').situation.type).toBe('NONE');
  });

  it('suggests durations inside a range and labels inside by ()', () => {
    expect(at('rate({a="b"}[¦').situation.type).toBe('RANGE');
    expect(at('sum by (¦').situation).toEqual({ type: 'GROUPING', selector: [] });
    expect(at('sum(rate({a="b"}[1m])) by (le, ¦').situation.type).toBe('GROUPING');
  });

  it('suggests functions and a selector at the start of an expression or an argument', () => {
    expect(at('¦').situation.type).toBe('EXPRESSION_START');
    expect(at('sum(¦').situation.type).toBe('EXPRESSION_START');
    expect(at('cou¦').situation.type).toBe('EXPRESSION_START');
    expect(at('cou¦').wordStart).toBe(0);
  });

  it('ends the pipeline at the range, so nothing is suggested after it', () => {
    expect(at('rate({a="b"}[5m]) ¦').situation.type).toBe('NONE');
  });
});

describe('getCompletionItems', () => {
  const calls: string[] = [];
  const data: CompletionDataProvider = {
    labelNames: async (selector) => {
      calls.push(`names ${selector}`);
      return ['job', 'env', 'host'];
    },
    labelValues: async (label, selector) => {
      calls.push(`values ${label} ${selector}`);
      return ['api', 'we"b'];
    },
    variables: () => ['service'],
  };
  beforeEach(() => (calls.length = 0));

  it('offers label names not yet used, inserting the operator and reopening suggestions', async () => {
    const items = await getCompletionItems(
      { type: 'LABEL_NAME', otherMatchers: [{ label: 'job', op: '=', value: 'api' }] },
      data
    );
    expect(items.map((i) => i.label)).toEqual(['env', 'host']);
    expect(items[0]).toMatchObject({ insertText: 'env=', retrigger: true, kind: 'label' });
    expect(calls).toEqual(['names {job="api"}']);
  });

  it('offers values narrowed by the other matchers, quoted and escaped, plus variables', async () => {
    const items = await getCompletionItems(
      {
        type: 'LABEL_VALUE',
        label: 'job',
        otherMatchers: [
          { label: 'env', op: '=', value: 'prod' },
          { label: 'job', op: '=', value: 'old' },
        ],
        betweenQuotes: false,
      },
      data
    );
    expect(calls).toEqual(['values job {env="prod"}']);
    expect(items.map((i) => i.insertText)).toEqual(['"api"', '"we\\"b"', '"$service"']);
    const inside = await getCompletionItems(
      { type: 'LABEL_VALUE', label: 'job', otherMatchers: [], betweenQuotes: true },
      data
    );
    expect(inside.map((i) => i.insertText)).toEqual(['api', 'we\\"b', '$service']);
  });

  it('offers line filters and pipeline stages after a selector', async () => {
    const items = await getCompletionItems({ type: 'AFTER_PIPELINE', selector: [] }, data);
    const labels = items.map((i) => i.label);
    expect(labels).toEqual(
      expect.arrayContaining(['|= ""', '!= ""', '|~ ""', '!~ ""', '| json', '| logfmt', '| pattern', '| line_format'])
    );
    expect(items.find((i) => i.label === '|= ""')).toMatchObject({ insertText: '|= "$0"', isSnippet: true });
  });

  it('offers parsers, formatters and label filters after a pipe', async () => {
    const items = await getCompletionItems(
      { type: 'PIPE_STAGE', selector: [{ label: 'job', op: '=', value: 'api' }] },
      data
    );
    expect(items.filter((i) => i.kind === 'parser').map((i) => i.label)).toEqual([
      'json',
      'logfmt',
      'pattern',
      'regexp',
      'unpack',
    ]);
    expect(items.find((i) => i.label === 'pattern')?.insertText).toBe('pattern "${1:<_> <message>}"');
    expect(items.find((i) => i.label === 'line_format')?.insertText).toBe('line_format "${1:{{.message\\}\\}}"');
    expect(items.filter((i) => i.kind === 'label').map((i) => i.label)).toEqual(['job', 'env', 'host']);
  });

  it('offers functions with snippets and a selector at the start', async () => {
    const items = await getCompletionItems({ type: 'EXPRESSION_START' }, data);
    expect(items[0]).toMatchObject({ label: '{}', insertText: '{$0}' });
    expect(items.find((i) => i.label === 'count_over_time')?.insertText).toBe('count_over_time({$1}[${2:\\$__auto}])');
    expect(items.find((i) => i.label === 'topk')?.insertText).toBe('topk(${1:5}, $0)');
    expect(items.map((i) => i.label)).toEqual(
      expect.arrayContaining(['rate', 'sum', 'label_replace', 'quantile_over_time'])
    );
  });

  it('offers interval variables first in a range', async () => {
    const items = await getCompletionItems({ type: 'RANGE' }, data);
    expect(items[0].label).toBe('$__auto');
    expect(items.map((i) => i.label)).toContain('5m');
  });

  it('offers nothing where nothing fits', async () => {
    expect(await getCompletionItems({ type: 'NONE' }, data)).toEqual([]);
  });
});
