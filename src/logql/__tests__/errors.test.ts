import { byteColumnToCharColumn, errorMarker, offsetOf, parseErrorPosition, positionOf } from '../errors';
import { interpolateWithMap } from '../interpolate';

describe('parseErrorPosition', () => {
  it('reads the server’s message', () => {
    expect(parseErrorPosition('parse error at line 2, col 14: syntax error: unexpected IDENTIFIER')).toEqual({
      line: 2,
      byteCol: 14,
      message: 'syntax error: unexpected IDENTIFIER',
    });
  });

  it('finds the position inside a wrapped message', () => {
    expect(parseErrorPosition('bad query: parse error at line 1, col 3: unexpected "}"')?.byteCol).toBe(3);
  });

  it('returns undefined for other errors', () => {
    expect(parseErrorPosition('connection refused')).toBeUndefined();
  });
});

describe('byteColumnToCharColumn', () => {
  it('is the identity for ASCII', () => {
    expect(byteColumnToCharColumn('{a="b"}', 5)).toBe(5);
  });

  it('counts multi-byte characters once', () => {
    // "é" is 2 bytes, "😀" 4 bytes and 2 UTF-16 units.
    expect(byteColumnToCharColumn('"é" x', 5)).toBe(4);
    expect(byteColumnToCharColumn('"😀" x', 7)).toBe(5);
  });
});

describe('positions', () => {
  const text = 'line one\nline two';
  it('converts between offsets and line/column', () => {
    expect(offsetOf(text, 2, 6)).toBe(14);
    expect(positionOf(text, 14)).toEqual({ line: 2, col: 6 });
    expect(positionOf(text, 0)).toEqual({ line: 1, col: 1 });
  });
});

describe('errorMarker', () => {
  it('marks the word at the reported position', () => {
    const q = '{job="api"} | jsn';
    const m = errorMarker('parse error at line 1, col 15: unknown stage "jsn"', q, q);
    expect(m).toEqual({
      startLineNumber: 1,
      startColumn: 15,
      endLineNumber: 1,
      endColumn: 18,
      message: 'unknown stage "jsn"',
    });
  });

  it('marks the last character when the query ends too early', () => {
    const q = '{job="api"';
    const m = errorMarker('parse error at line 1, col 11: unexpected end of input', q, q);
    expect(m).toMatchObject({ startColumn: 10, endColumn: 11 });
  });

  it('places an error on the second line', () => {
    const q = '{job="api"}\n  |= ';
    const m = errorMarker('parse error at line 2, col 5: expected a string', q, q);
    expect(m).toMatchObject({ startLineNumber: 2, startColumn: 5 });
  });

  it('marks everything when the message has no position', () => {
    const q = 'a\nbc';
    expect(errorMarker('timeout', q, q)).toEqual({
      startLineNumber: 1,
      startColumn: 1,
      endLineNumber: 2,
      endColumn: 3,
      message: 'timeout',
    });
  });

  it('maps positions back through template variable substitution', () => {
    const original = '{job="$job"} |= "x" | $bad';
    const sub = interpolateWithMap(original, (_ref, name) => (name === 'job' ? 'a-much-longer-value' : '??'));
    expect(sub.text).toBe('{job="a-much-longer-value"} |= "x" | ??');
    // The error is at "??" in the sent text: it must cover "$bad" in the editor.
    const col = sub.text.indexOf('??') + 1;
    const m = errorMarker(`parse error at line 1, col ${col}: unexpected "?"`, sub.text, original, sub.mapOffset);
    expect(original.slice(m.startColumn - 1, m.endColumn - 1)).toBe('$bad');
    // An error after a substituted value shifts back by the length difference.
    const pipe = sub.text.indexOf('|=') + 1;
    const m2 = errorMarker(`parse error at line 1, col ${pipe}: x`, sub.text, original, sub.mapOffset);
    expect(m2.startColumn).toBe(original.indexOf('|=') + 1);
  });
});

describe('interpolateWithMap', () => {
  it('recognises every variable syntax Grafana has', () => {
    const seen: string[] = [];
    const r = interpolateWithMap('$a ${b} ${c:regex} [[d]] [[e:raw]] $', (ref, name) => {
      seen.push(`${ref}=${name}`);
      return name.toUpperCase();
    });
    expect(seen).toEqual(['$a=a', '${b}=b', '${c:regex}=c', '[[d]]=d', '[[e:raw]]=e']);
    expect(r.text).toBe('A B C D E $');
  });

  it('is the identity without variables', () => {
    const r = interpolateWithMap('{a="b"}', () => 'x');
    expect(r.text).toBe('{a="b"}');
    expect(r.mapOffset(3)).toEqual({ start: 3, end: 3 });
  });
});
