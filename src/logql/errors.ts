/**
 * Turns the server's parse errors into editor markers. The server reports
 * `parse error at line L, col C: message` with a 1-based line and a 1-based column counted in
 * UTF-8 bytes; editors count UTF-16 code units, so the column is converted.
 */

export interface ParseErrorPosition {
  line: number;
  /** 1-based, in bytes as the server counts. */
  byteCol: number;
  message: string;
}

export interface ErrorMarker {
  startLineNumber: number;
  startColumn: number;
  endLineNumber: number;
  endColumn: number;
  message: string;
}

const PARSE_ERROR = /parse error at line (\d+), col (\d+):\s*([\s\S]*)$/;

export function parseErrorPosition(message: string): ParseErrorPosition | undefined {
  const m = PARSE_ERROR.exec(message);
  if (!m) {
    return undefined;
  }
  return { line: Number(m[1]), byteCol: Number(m[2]), message: m[3].trim() };
}

/** Converts a 1-based UTF-8 byte column of lineText into a 1-based UTF-16 column. */
export function byteColumnToCharColumn(lineText: string, byteCol: number): number {
  let bytes = 0;
  let i = 0;
  while (i < lineText.length && bytes < byteCol - 1) {
    const cp = lineText.codePointAt(i)!;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  return i + 1;
}

/** 0-based offset into text of a 1-based line and UTF-16 column. */
export function offsetOf(text: string, line: number, col: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) {
      return text.length;
    }
    offset = nl + 1;
  }
  return Math.min(offset + col - 1, text.length);
}

/** 1-based line and UTF-16 column of a 0-based offset. */
export function positionOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  const col = before.length - before.lastIndexOf('\n');
  return { line, col };
}

/**
 * Builds a marker for an error reported against `sent` (the text the server saw), placed on
 * `original` (the text in the editor) through `mapOffset`, which undoes template variable
 * substitution. The marker covers the word at the error, or one character.
 */
export function errorMarker(
  rawMessage: string,
  sent: string,
  original: string,
  mapOffset: (sentOffset: number) => { start: number; end: number } = (o) => ({ start: o, end: o })
): ErrorMarker {
  const pos = parseErrorPosition(rawMessage);
  if (!pos) {
    // No position: mark the whole query so the message is still shown where the user looks.
    const end = positionOf(original, original.length);
    return { startLineNumber: 1, startColumn: 1, endLineNumber: end.line, endColumn: end.col, message: rawMessage };
  }
  const lines = sent.split('\n');
  const lineText = lines[pos.line - 1] ?? '';
  const col = byteColumnToCharColumn(lineText, pos.byteCol);
  const sentOffset = offsetOf(sent, pos.line, col);
  const span = mapOffset(sentOffset);
  let start = span.start;
  let end = span.end;
  if (start >= original.length && original.length > 0) {
    // Unexpected end of query: mark the last character rather than nothing.
    start = original.length - 1;
    end = original.length;
  } else if (end === start) {
    end = wordEnd(original, start);
  }
  const s = positionOf(original, start);
  const e = positionOf(original, end);
  return { startLineNumber: s.line, startColumn: s.col, endLineNumber: e.line, endColumn: e.col, message: pos.message };
}

function wordEnd(text: string, start: number): number {
  const m = /^[A-Za-z0-9_$.]+/.exec(text.slice(start));
  if (m) {
    return start + m[0].length;
  }
  return Math.min(start + 1, text.length);
}
