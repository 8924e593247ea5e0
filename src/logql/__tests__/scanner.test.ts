import { findClosing, scan, significant } from '../scanner';

const kinds = (text: string) => significant(scan(text)).map((t) => `${t.kind}:${t.text}`);

describe('scan', () => {
  it('reads a selector with a pipeline', () => {
    expect(kinds('{job="api", env=~"prod|dev"} |= "timeout" | json | level!="debug"')).toEqual([
      'lbrace:{',
      'ident:job',
      'op:=',
      'string:"api"',
      'comma:,',
      'ident:env',
      'op:=~',
      'string:"prod|dev"',
      'rbrace:}',
      'op:|=',
      'string:"timeout"',
      'pipe:|',
      'ident:json',
      'pipe:|',
      'ident:level',
      'op:!=',
      'string:"debug"',
    ]);
  });

  it('reads durations, byte sizes, numbers and variables', () => {
    expect(kinds('rate({a="b"}[1h30m]) > 1.5e3 | size > 10KB [$__auto] ${var:raw}')).toEqual([
      'ident:rate',
      'lparen:(',
      'lbrace:{',
      'ident:a',
      'op:=',
      'string:"b"',
      'rbrace:}',
      'lbracket:[',
      'duration:1h30m',
      'rbracket:]',
      'rparen:)',
      'op:>',
      'number:1.5e3',
      'pipe:|',
      'ident:size',
      'op:>',
      'number:10KB',
      'lbracket:[',
      'variable:$__auto',
      'rbracket:]',
      'variable:${var:raw}',
    ]);
  });

  it('unescapes double-quoted strings and keeps backtick strings raw', () => {
    const [a, b] = significant(scan('"a\\"b\\\\c\\n" `x\\.y`'));
    expect(a.value).toBe('a"b\\c\n');
    expect(a.closed).toBe(true);
    expect(b.value).toBe('x\\.y');
  });

  it('marks an unterminated string and never fails on junk', () => {
    const tokens = significant(scan('{a="unfinished'));
    expect(tokens[tokens.length - 1]).toMatchObject({ kind: 'string', closed: false, value: 'unfinished' });
    expect(kinds('@ ;')).toEqual(['other:@', 'other:;']);
  });

  it('keeps comments apart from the tokens that matter', () => {
    const all = scan('{a="b"} # note\n|= "x"');
    expect(all.some((t) => t.kind === 'comment' && t.text === '# note')).toBe(true);
    expect(kinds('{a="b"} # note\n|= "x"')).toEqual([
      'lbrace:{',
      'ident:a',
      'op:=',
      'string:"b"',
      'rbrace:}',
      'op:|=',
      'string:"x"',
    ]);
  });

  it('records offsets that cover the source exactly', () => {
    const text = 'sum by (a) (count_over_time({x="y"} [5m]))';
    expect(
      scan(text)
        .map((t) => text.slice(t.start, t.end))
        .join('')
    ).toBe(text);
  });
});

describe('findClosing', () => {
  it('matches nested brackets and reports unclosed ones', () => {
    const tokens = significant(scan('sum(rate({a="b"}[1m]))'));
    expect(tokens[findClosing(tokens, 1)].start).toBe(21);
    expect(findClosing(significant(scan('sum(rate(')), 1)).toBe(-1);
  });
});
