import { escapeRegex, escapeString, formatVariableValue, isValidLabelName, quote } from '../escape';
import { fromVariableModel, parseVariableQuery, toVariableModel, variableQueryText } from '../variables';

describe('parseVariableQuery', () => {
  it('reads label_names with and without a selector', () => {
    expect(parseVariableQuery('label_names()')).toEqual({ kind: 'labelNames' });
    expect(parseVariableQuery(' label_names( {job="api"} ) ')).toEqual({ kind: 'labelNames', selector: '{job="api"}' });
  });

  it('reads label_values with a label, a selector, and a selector containing commas', () => {
    expect(parseVariableQuery('label_values(job)')).toEqual({ kind: 'labelValues', label: 'job' });
    expect(parseVariableQuery('label_values({env="prod", team=~"a|b"} |= "x", host)')).toEqual({
      kind: 'labelValues',
      label: 'host',
      selector: '{env="prod", team=~"a|b"} |= "x"',
    });
  });

  it('reads workspaces()', () => {
    expect(parseVariableQuery('workspaces()')).toEqual({ kind: 'workspaces' });
  });

  it('rejects anything else', () => {
    expect(parseVariableQuery('label_values()')).toBeUndefined();
    expect(parseVariableQuery('label_values({a="b"}, bad-label)')).toBeUndefined();
    expect(parseVariableQuery('label_values(, job)')).toBeUndefined();
    expect(parseVariableQuery('{job="api"}')).toBeUndefined();
    expect(parseVariableQuery('')).toBeUndefined();
  });
});

describe('escaping', () => {
  it('escapes for double-quoted strings', () => {
    expect(escapeString('a"b\\c\nd\te')).toBe('a\\"b\\\\c\\nd\\te');
    expect(quote('x"y')).toBe('"x\\"y"');
  });

  it('escapes every RE2 metacharacter', () => {
    expect(escapeRegex('a.b*c+d?e(f)g[h]i{j}k|l^m$n\\o')).toBe(
      'a\\.b\\*c\\+d\\?e\\(f\\)g\\[h\\]i\\{j\\}k\\|l\\^m\\$n\\\\o'
    );
    expect(new RegExp(`^${escapeRegex('1.2.3 (x)')}$`).test('1.2.3 (x)')).toBe(true);
  });

  it('validates label names', () => {
    expect(isValidLabelName('detected_level')).toBe(true);
    expect(isValidLabelName('_x1')).toBe(true);
    expect(isValidLabelName('1x')).toBe(false);
    expect(isValidLabelName('a-b')).toBe(false);
  });
});

describe('formatVariableValue', () => {
  it('inserts a single value as string content', () => {
    expect(formatVariableValue('we"b.1', false)).toBe('we\\"b.1');
  });

  it('turns several values into a regex alternation of literals, escaped for the string', () => {
    expect(formatVariableValue(['web.1', 'api'], true)).toBe('web\\\\.1|api');
    expect(formatVariableValue(['a|b'], true)).toBe('a\\\\|b');
    expect(formatVariableValue('only.one', true)).toBe('only\\\\.one');
  });
});

describe('the variable editor model', () => {
  it('round-trips every text query through the model', () => {
    for (const text of [
      'label_names()',
      'label_names({job="api"})',
      'label_values(job)',
      'label_values({env="prod", team=~"a|b"} |= "x", host)',
      'workspaces()',
    ]) {
      const parsed = parseVariableQuery(text)!;
      expect(fromVariableModel(toVariableModel(parsed))).toEqual(parsed);
      expect(variableQueryText(parsed)).toBe(text);
    }
  });

  it('needs a valid label for label values and ignores a blank selector', () => {
    expect(fromVariableModel({ refId: 'V', type: 'labelValues' })).toBeUndefined();
    expect(fromVariableModel({ refId: 'V', type: 'labelValues', label: 'bad-label' })).toBeUndefined();
    expect(fromVariableModel({ refId: 'V', type: 'labelNames', stream: '  ' })).toEqual({ kind: 'labelNames' });
    expect(fromVariableModel({ refId: 'V', type: 'workspaces', stream: '{a="b"}' })).toEqual({ kind: 'workspaces' });
  });
});
