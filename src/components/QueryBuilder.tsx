import { css } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import {
  Alert,
  Button,
  Combobox,
  ComboboxOption,
  IconButton,
  InlineField,
  InlineSwitch,
  Input,
  MultiCombobox,
  RadioButtonGroup,
  Stack,
  Text,
  useStyles2,
} from '@grafana/ui';
import React, { useEffect, useState } from 'react';

import { LogsiftDatasource } from '../datasource';
import {
  BuilderState,
  emptyBuilderState,
  LabelFilterOp,
  LineFilterOp,
  needsUnwrap,
  parseQuery,
  ParserType,
  RANGE_FUNCTIONS_WITH_UNWRAP,
  RANGE_FUNCTIONS_WITHOUT_UNWRAP,
  RangeFunction,
  renderQuery,
  VECTOR_AGGREGATIONS,
  VectorAggregation,
} from '../logql/builder';
import { selectorText } from '../logql/completion';
import { MatcherOp } from '../logql/syntax';

interface Props {
  datasource: LogsiftDatasource;
  expr: string;
  range?: TimeRange;
  /** Scopes label lookups to one workspace. */
  workspace?: string;
  onChange: (expr: string) => void;
  /** Leave the builder for the code editor (offered when the query cannot be shown here). */
  onSwitchToCode: () => void;
}

const MATCHER_OPS: Array<ComboboxOption<MatcherOp>> = [
  { value: '=', description: 'equals' },
  { value: '!=', description: 'does not equal' },
  { value: '=~', description: 'matches regex' },
  { value: '!~', description: 'does not match regex' },
];

const LINE_FILTER_OPS: Array<ComboboxOption<LineFilterOp>> = [
  { value: '|=', label: 'contains' },
  { value: '!=', label: 'does not contain' },
  { value: '|~', label: 'matches regex' },
  { value: '!~', label: 'does not match regex' },
];

const LABEL_FILTER_OPS: Array<ComboboxOption<LabelFilterOp>> = [
  ...(MATCHER_OPS as Array<ComboboxOption<LabelFilterOp>>),
  { value: '>', description: 'greater than' },
  { value: '>=', description: 'greater or equal' },
  { value: '<', description: 'less than' },
  { value: '<=', description: 'less or equal' },
];

const PARSER_OPTIONS = [
  { value: '', label: 'none' },
  { value: 'json', label: 'json' },
  { value: 'logfmt', label: 'logfmt' },
  { value: 'pattern', label: 'pattern' },
  { value: 'regexp', label: 'regexp' },
];

const RANGE_FUNCTION_OPTIONS: Array<ComboboxOption<string>> = [
  ...RANGE_FUNCTIONS_WITHOUT_UNWRAP,
  ...RANGE_FUNCTIONS_WITH_UNWRAP,
].map((f) => ({
  value: f,
  description: needsUnwrap(f) ? 'of an unwrapped label' : undefined,
}));

const AGGREGATION_OPTIONS: Array<ComboboxOption<string>> = [
  { value: 'none', label: 'none' },
  ...VECTOR_AGGREGATIONS.map((a) => ({ value: a })),
];

/**
 * The builder mode: the query as rows of choices, for people who do not know LogQL. The text it
 * renders is the query; rows not yet complete are kept here and left out of the text.
 */
export function QueryBuilder({ datasource, expr, range, workspace, onChange, onSwitchToCode }: Props) {
  const styles = useStyles2(getStyles);
  const [state, setState] = useState<BuilderState | undefined>(() => parseQuery(expr));
  // The text the current state stands for; a different expr came from outside the builder
  // (a filter from log details, query history) and is shown anew.
  const [shownExpr, setShownExpr] = useState(expr);
  if (expr !== shownExpr) {
    setState(parseQuery(expr));
    setShownExpr(expr);
  }

  if (!state) {
    return (
      <Alert severity="info" title="The builder cannot show this query" data-testid="builder-unsupported">
        <Stack direction="column" gap={1}>
          <Text>It uses parts of LogQL the builder does not offer. Edit it in code mode, or start over here.</Text>
          <Stack>
            <Button size="sm" variant="secondary" onClick={onSwitchToCode}>
              Back to code
            </Button>
            <Button
              size="sm"
              variant="destructive"
              fill="outline"
              onClick={() => {
                setState(emptyBuilderState());
                setShownExpr('');
                onChange('');
              }}
            >
              Start over in builder
            </Button>
          </Stack>
        </Stack>
      </Alert>
    );
  }

  const update = (next: BuilderState) => {
    setState(next);
    const text = renderQuery(next);
    if (text !== shownExpr) {
      setShownExpr(text);
      onChange(text);
    }
  };

  const completeMatchers = state.labels.filter((m) => m.label && m.value !== '');
  const labelNameOptions = async (input: string, exclude?: string) => {
    const selector = selectorText(completeMatchers.filter((m) => m.label !== exclude));
    const names = await datasource.getLabelNames({ selector: selector || undefined, range, workspace });
    return filterOptions(names, input);
  };
  const labelValueOptions = async (label: string, input: string) => {
    if (!label) {
      return [];
    }
    const selector = selectorText(completeMatchers.filter((m) => m.label !== label));
    const values = await datasource.getLabelValues(label, { selector: selector || undefined, range, workspace });
    return filterOptions(values, input);
  };

  return (
    <div className={styles.builder} data-testid="logsift-query-builder">
      <Section title="Streams">
        {state.labels.map((m, i) => (
          <Stack key={i} gap={0.5} alignItems="center">
            <Combobox
              aria-label={`Label ${i + 1}`}
              width={24}
              placeholder="label"
              createCustomValue
              value={m.label || null}
              options={(input) => labelNameOptions(input, m.label)}
              onChange={(o) => update(withItem(state, 'labels', i, { ...m, label: o.value, value: '' }))}
            />
            <Combobox
              aria-label={`Operator ${i + 1}`}
              width={9}
              value={m.op}
              options={MATCHER_OPS}
              onChange={(o) => update(withItem(state, 'labels', i, { ...m, op: o.value }))}
            />
            <Combobox
              aria-label={`Value ${i + 1}`}
              width={32}
              placeholder="value"
              createCustomValue
              value={m.value || null}
              options={(input) => labelValueOptions(m.label, input)}
              onChange={(o) => update(withItem(state, 'labels', i, { ...m, value: o.value }))}
            />
            <IconButton name="times" tooltip="Remove label" onClick={() => update(without(state, 'labels', i))} />
          </Stack>
        ))}
        <Button
          size="sm"
          variant="secondary"
          icon="plus"
          onClick={() => update({ ...state, labels: [...state.labels, { label: '', op: '=', value: '' }] })}
        >
          Label
        </Button>
      </Section>

      <Section title="Line contains">
        {state.lineFilters.map((f, i) => (
          <Stack key={i} gap={0.5} alignItems="center">
            <Combobox
              aria-label={`Line filter operator ${i + 1}`}
              width={24}
              value={f.op}
              options={LINE_FILTER_OPS}
              onChange={(o) => update(withItem(state, 'lineFilters', i, { ...f, op: o.value }))}
            />
            <Input
              aria-label={`Line filter text ${i + 1}`}
              width={42}
              placeholder={f.op === '|~' || f.op === '!~' ? 'regular expression' : 'text'}
              value={f.value}
              onChange={(e) => update(withItem(state, 'lineFilters', i, { ...f, value: e.currentTarget.value }))}
            />
            <IconButton
              name="times"
              tooltip="Remove line filter"
              onClick={() => update(without(state, 'lineFilters', i))}
            />
          </Stack>
        ))}
        <Button
          size="sm"
          variant="secondary"
          icon="plus"
          onClick={() => update({ ...state, lineFilters: [...state.lineFilters, { op: '|=', value: '' }] })}
        >
          Line filter
        </Button>
      </Section>

      <Section title="Parse">
        <Stack gap={0.5} alignItems="center">
          <RadioButtonGroup
            aria-label="Parser"
            size="sm"
            options={PARSER_OPTIONS}
            value={state.parser?.type ?? ''}
            onChange={(v) =>
              update({
                ...state,
                parser: v ? { type: v as ParserType, expression: state.parser?.expression } : undefined,
              })
            }
          />
          {(state.parser?.type === 'pattern' || state.parser?.type === 'regexp') && (
            <Input
              aria-label="Parser expression"
              width={42}
              placeholder={state.parser.type === 'pattern' ? '<ip> - - <_> "<method> <path>"' : '(?P<status>\\d{3})'}
              value={state.parser.expression ?? ''}
              onChange={(e) => update({ ...state, parser: { ...state.parser!, expression: e.currentTarget.value } })}
            />
          )}
        </Stack>
      </Section>

      <Section title="Label filters">
        {state.labelFilters.map((f, i) => (
          <Stack key={i} gap={0.5} alignItems="center">
            <Combobox
              aria-label={`Label filter label ${i + 1}`}
              width={24}
              placeholder="label"
              createCustomValue
              value={f.label || null}
              options={(input) => labelNameOptions(input)}
              onChange={(o) => update(withItem(state, 'labelFilters', i, { ...f, label: o.value }))}
            />
            <Combobox
              aria-label={`Label filter operator ${i + 1}`}
              width={9}
              value={f.op}
              options={LABEL_FILTER_OPS}
              onChange={(o) => update(withItem(state, 'labelFilters', i, { ...f, op: o.value }))}
            />
            <Input
              aria-label={`Label filter value ${i + 1}`}
              width={32}
              placeholder="value"
              value={f.value}
              onChange={(e) => update(withItem(state, 'labelFilters', i, { ...f, value: e.currentTarget.value }))}
            />
            <IconButton
              name="times"
              tooltip="Remove label filter"
              onClick={() => update(without(state, 'labelFilters', i))}
            />
          </Stack>
        ))}
        <Button
          size="sm"
          variant="secondary"
          icon="plus"
          onClick={() => update({ ...state, labelFilters: [...state.labelFilters, { label: '', op: '=', value: '' }] })}
        >
          Label filter
        </Button>
      </Section>

      <Section title="Metric">
        <Stack gap={0.5} alignItems="center" wrap="wrap">
          <InlineSwitch
            aria-label="Metric query"
            label="Count or rate instead of lines"
            showLabel
            value={Boolean(state.metric)}
            onChange={(e) =>
              update({
                ...state,
                metric: e.currentTarget.checked
                  ? { rangeFunction: 'count_over_time', range: '$__auto', by: [] }
                  : undefined,
              })
            }
          />
          {state.metric && <MetricRow state={state} update={update} labelNames={(input) => labelNameOptions(input)} />}
        </Stack>
      </Section>
    </div>
  );
}

function MetricRow({
  state,
  update,
  labelNames,
}: {
  state: BuilderState;
  update: (s: BuilderState) => void;
  labelNames: (input: string) => Promise<Array<ComboboxOption<string>>>;
}) {
  const metric = state.metric!;
  const set = (patch: Partial<NonNullable<BuilderState['metric']>>) =>
    update({ ...state, metric: { ...metric, ...patch } });
  const [byOptions, setByOptions] = useState<Array<ComboboxOption<string>>>([]);
  useEffect(() => {
    let live = true;
    labelNames('').then(
      (o) => live && setByOptions(o),
      () => undefined
    );
    return () => {
      live = false;
    };
    // Loaded once per metric row; the label list rarely changes while editing.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <>
      <InlineField label="Function">
        <Combobox
          aria-label="Range function"
          width={24}
          value={metric.rangeFunction}
          options={RANGE_FUNCTION_OPTIONS}
          onChange={(o) => set({ rangeFunction: o.value as RangeFunction })}
        />
      </InlineField>
      {needsUnwrap(metric.rangeFunction) && (
        <InlineField label="Unwrap" tooltip="The label whose numeric value is aggregated">
          <Input
            aria-label="Unwrap label"
            width={16}
            value={metric.unwrap ?? ''}
            onChange={(e) => set({ unwrap: e.currentTarget.value || undefined })}
          />
        </InlineField>
      )}
      <InlineField label="Range" tooltip="The window of each point; $__auto follows the panel's resolution">
        <Input
          aria-label="Range"
          width={12}
          value={metric.range}
          onChange={(e) => set({ range: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Aggregate">
        <Combobox
          aria-label="Aggregation"
          width={14}
          value={metric.aggregation ?? 'none'}
          options={AGGREGATION_OPTIONS}
          onChange={(o) => set({ aggregation: o.value === 'none' ? undefined : (o.value as VectorAggregation) })}
        />
      </InlineField>
      {(metric.aggregation === 'topk' || metric.aggregation === 'bottomk') && (
        <InlineField label="k">
          <Input
            aria-label="k"
            type="number"
            width={8}
            value={metric.param ?? 10}
            onChange={(e) => set({ param: Number(e.currentTarget.value) || undefined })}
          />
        </InlineField>
      )}
      {metric.aggregation && (
        <InlineField label="by">
          <MultiCombobox
            aria-label="Group by"
            width={32}
            createCustomValue
            value={metric.by}
            options={byOptions}
            onChange={(opts) => set({ by: opts.map((o) => o.value) })}
          />
        </InlineField>
      )}
    </>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  const styles = useStyles2(getStyles);
  return (
    <div className={styles.section}>
      <div className={styles.sectionTitle}>{title}</div>
      <Stack direction="column" gap={0.5}>
        {children}
      </Stack>
    </div>
  );
}

type ListKey = 'labels' | 'lineFilters' | 'labelFilters';

function withItem<K extends ListKey>(
  state: BuilderState,
  key: K,
  index: number,
  item: BuilderState[K][number]
): BuilderState {
  const list = [...state[key]] as Array<BuilderState[K][number]>;
  list[index] = item;
  return { ...state, [key]: list };
}

function without(state: BuilderState, key: ListKey, index: number): BuilderState {
  return { ...state, [key]: state[key].filter((_, i) => i !== index) };
}

function filterOptions(values: string[], input: string): Array<ComboboxOption<string>> {
  const needle = input.toLowerCase();
  return values.filter((v) => v.toLowerCase().includes(needle)).map((v) => ({ value: v }));
}

const getStyles = (theme: GrafanaTheme2) => ({
  builder: css({
    display: 'flex',
    flexDirection: 'column',
    gap: theme.spacing(1),
  }),
  section: css({
    display: 'grid',
    gridTemplateColumns: '120px 1fr',
    alignItems: 'start',
    gap: theme.spacing(1),
    padding: theme.spacing(0.5, 1),
    background: theme.colors.background.secondary,
    borderRadius: theme.shape.radius.default,
  }),
  sectionTitle: css({
    fontWeight: theme.typography.fontWeightMedium,
    paddingTop: theme.spacing(0.75),
    color: theme.colors.text.secondary,
  }),
});
