/** Escaping for values placed into LogQL text. */

/** Escapes a value for the inside of a double-quoted LogQL string. */
export function escapeString(value: string): string {
  return value.replace(/[\\"\n\r\t]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return '\\' + c;
    }
  });
}

/** A complete double-quoted LogQL string holding value. */
export function quote(value: string): string {
  return `"${escapeString(value)}"`;
}

/** Escapes RE2 metacharacters so the value matches itself literally. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/** Label names as LogQL accepts them in selectors and label filters. */
export function isValidLabelName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/**
 * Formats a template variable's value for a LogQL query, the way a user most likely meant it:
 * one value goes in as the string content it is; several values (multi-value or "All") become
 * a regex alternation of literal values, for use with =~ or |~. Either way the result is
 * escaped for a double-quoted string.
 */
export function formatVariableValue(value: string | string[], multi: boolean): string {
  if (!Array.isArray(value)) {
    return multi ? escapeString(escapeRegex(value)) : escapeString(value);
  }
  if (value.length === 1) {
    return escapeString(escapeRegex(value[0]));
  }
  return value.map((v) => escapeString(escapeRegex(v))).join('|');
}
