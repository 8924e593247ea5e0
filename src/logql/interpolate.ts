/**
 * Template variable substitution that remembers where each substitution happened, so an error
 * position in the substituted text can be shown on the text the user typed.
 */

/** $name, ${name}, ${name:format}, [[name]], [[name:format]] as Grafana writes variables. */
const VARIABLE_REF = /\$\{([A-Za-z0-9_.]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_.]+)(?::[^\]]*)?\]\]/g;

interface Replacement {
  /** Range in the original text. */
  origStart: number;
  origEnd: number;
  /** Range in the substituted text. */
  newStart: number;
  newEnd: number;
}

export interface Interpolated {
  text: string;
  /** Maps an offset in the substituted text to a range in the original. */
  mapOffset: (offset: number) => { start: number; end: number };
}

export function interpolateWithMap(text: string, replace: (ref: string, name: string) => string): Interpolated {
  const replacements: Replacement[] = [];
  let out = '';
  let last = 0;
  for (const m of text.matchAll(VARIABLE_REF)) {
    const ref = m[0];
    const name = m[1] ?? m[2] ?? m[3];
    const start = m.index!;
    out += text.slice(last, start);
    const value = replace(ref, name);
    replacements.push({
      origStart: start,
      origEnd: start + ref.length,
      newStart: out.length,
      newEnd: out.length + value.length,
    });
    out += value;
    last = start + ref.length;
  }
  out += text.slice(last);

  const mapOffset = (offset: number) => {
    let shift = 0;
    for (const r of replacements) {
      if (offset < r.newStart) {
        break;
      }
      if (offset < r.newEnd) {
        return { start: r.origStart, end: r.origEnd };
      }
      shift = r.origEnd - r.newEnd;
    }
    return { start: offset + shift, end: offset + shift };
  };
  return { text: out, mapOffset };
}

/** Interval variables the server resolves itself; for validation any valid duration stands in. */
export const SERVER_INTERVAL_VARIABLES = [
  '__auto',
  '__interval',
  '__interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
  '__rate_interval',
];
