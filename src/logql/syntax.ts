/** The vocabulary of LogQL as logsift's parser accepts it, with a line of help for each word. */

export interface Word {
  name: string;
  doc: string;
}

export const PARSERS: Word[] = [
  { name: 'json', doc: 'Extract labels from a JSON line; `json a="path.to.field"` extracts chosen fields only.' },
  { name: 'logfmt', doc: 'Extract labels from key=value pairs; flags --strict and --keep-empty.' },
  { name: 'pattern', doc: 'Extract labels with a pattern such as `<ip> - - [<_>] "<method> <path>"`.' },
  { name: 'regexp', doc: 'Extract labels from the named capture groups of a regular expression.' },
  { name: 'unpack', doc: 'Unpack JSON written by Promtail’s pack stage.' },
];

export const FORMATTERS: Word[] = [
  { name: 'line_format', doc: 'Rewrite the line with a Go template, e.g. `line_format "{{.level}} {{.msg}}"`.' },
  { name: 'label_format', doc: 'Rename labels or set them from a template: `label_format dst=src`.' },
  { name: 'drop', doc: 'Drop labels: `drop a, b`.' },
  { name: 'keep', doc: 'Keep only these labels: `keep a, b`.' },
  { name: 'decolorize', doc: 'Strip ANSI colour codes from the line.' },
  { name: 'unwrap', doc: 'Use a label’s value as the sample value of an unwrapped range aggregation.' },
];

export const RANGE_FUNCTIONS: Word[] = [
  { name: 'count_over_time', doc: 'Number of entries per stream in each window.' },
  { name: 'rate', doc: 'Entries per second per stream.' },
  { name: 'bytes_over_time', doc: 'Bytes of log lines per stream in each window.' },
  { name: 'bytes_rate', doc: 'Bytes per second per stream.' },
  { name: 'absent_over_time', doc: 'A series of 1 where the selection has no entries in the window.' },
  { name: 'sum_over_time', doc: 'Sum of unwrapped values.' },
  { name: 'avg_over_time', doc: 'Average of unwrapped values.' },
  { name: 'min_over_time', doc: 'Minimum of unwrapped values.' },
  { name: 'max_over_time', doc: 'Maximum of unwrapped values.' },
  { name: 'first_over_time', doc: 'First unwrapped value in the window.' },
  { name: 'last_over_time', doc: 'Last unwrapped value in the window.' },
  { name: 'stddev_over_time', doc: 'Standard deviation of unwrapped values.' },
  { name: 'stdvar_over_time', doc: 'Variance of unwrapped values.' },
  { name: 'quantile_over_time', doc: 'φ-quantile of unwrapped values: `quantile_over_time(0.99, ...)`.' },
  { name: 'rate_counter', doc: 'Per-second rate of an unwrapped counter.' },
];

export const VECTOR_AGGREGATIONS: Word[] = [
  { name: 'sum', doc: 'Sum over series, optionally `by (labels)`.' },
  { name: 'avg', doc: 'Average over series.' },
  { name: 'min', doc: 'Minimum over series.' },
  { name: 'max', doc: 'Maximum over series.' },
  { name: 'count', doc: 'Number of series.' },
  { name: 'stddev', doc: 'Standard deviation over series.' },
  { name: 'stdvar', doc: 'Variance over series.' },
  { name: 'topk', doc: 'The k largest series: `topk(5, ...)`.' },
  { name: 'bottomk', doc: 'The k smallest series: `bottomk(5, ...)`.' },
  { name: 'approx_topk', doc: 'The k largest series, estimated in bounded memory: `approx_topk(5, ...)`.' },
  { name: 'sort', doc: 'Series sorted by value, ascending.' },
  { name: 'sort_desc', doc: 'Series sorted by value, descending.' },
];

export const OTHER_FUNCTIONS: Word[] = [
  { name: 'vector', doc: 'A constant series: `vector(0)`.' },
  { name: 'label_replace', doc: '`label_replace(expr, "dst", "$1", "src", "regex")`.' },
];

/** Functions allowed inside label filters and unwrap. */
export const FILTER_FUNCTIONS = ['ip', 'duration', 'duration_seconds', 'bytes'];

export const KEYWORDS = [
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
];

export const LINE_FILTER_OPERATORS = [
  { op: '|=', doc: 'Line contains' },
  { op: '!=', doc: 'Line does not contain' },
  { op: '|~', doc: 'Line matches regex' },
  { op: '!~', doc: 'Line does not match regex' },
];

export const MATCHER_OPERATORS = ['=', '!=', '=~', '!~'] as const;
export type MatcherOp = (typeof MATCHER_OPERATORS)[number];

export const RANGE_SUGGESTIONS = ['$__auto', '$__interval', '$__range', '1m', '5m', '10m', '1h', '24h'];

export const names = (words: Word[]) => words.map((w) => w.name);
