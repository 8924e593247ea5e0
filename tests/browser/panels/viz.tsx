/**
 * The panels' visualisations, drawn with the components Grafana's own panel plugins use:
 * TimeSeries (time series), BigValue in a VizRepeater (stat), BarGauge in a VizRepeater (bar
 * gauge) and TableNG (table), all from @grafana/ui 13.2.3. Two are drawn by this page, because
 * @grafana/ui exports no component for them: the state timeline (bands per series, coloured by
 * the field's colour scheme as Grafana's would be) and the logs panel (rows of time, level and
 * line, after Grafana's logs panel; the plugin ships no log row styling of its own).
 */
import {
  DataFrame,
  dateTime,
  DisplayValueAlignmentFactors,
  Field,
  FieldConfigSource,
  FieldDisplay,
  FieldType,
  getDisplayValueAlignmentFactors,
  getFieldDisplayName,
  getFieldDisplayValues,
  GrafanaTheme2,
  TimeRange,
  VizOrientation,
  applyNullInsertThreshold,
  nullToValue,
  getDisplayProcessor,
  ReduceDataOptions,
} from '@grafana/data';
import {
  BarGauge,
  BigValue,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueJustifyMode,
  BigValueTextMode,
  TimeSeries,
  VizRepeater,
} from '@grafana/ui';
import { TableNG } from '@grafana/ui/unstable';
import React, { useEffect, useRef } from 'react';

export interface VizProps {
  type: string;
  frames: DataFrame[];
  /** Field config after the plugin's defaults (fieldConfig.ts), for the value panels. */
  fieldConfig: FieldConfigSource;
  options: Record<string, any>;
  width: number;
  height: number;
  timeRange: TimeRange;
  timeZone: string;
  theme: GrafanaTheme2;
}

/** True when the frames hold something a panel can draw. */
export function hasData(frames: DataFrame[]): boolean {
  return frames.some((f) => f.length > 0 && f.fields.length > 0);
}

export function Viz(props: VizProps): React.ReactElement {
  switch (props.type) {
    case 'timeseries':
      return <TimeSeriesViz {...props} />;
    case 'stat':
      return <StatViz {...props} />;
    case 'bargauge':
      return <BarGaugeViz {...props} />;
    case 'table':
      return <TableViz {...props} />;
    case 'state-timeline':
      return <StateTimelineViz {...props} />;
    case 'logs':
      return <LogsViz {...props} />;
  }
  throw new Error(`no visualisation for panel type ${props.type}`);
}

/** What Grafana's time series panel hands its graph (prepareGraphableFields, simplified). */
function graphable(frames: DataFrame[], theme: GrafanaTheme2, timeRange: TimeRange): DataFrame[] {
  const out: DataFrame[] = [];
  let seriesIndex = 0;
  for (const frame of frames) {
    const nulled = nullToValue(
      applyNullInsertThreshold({
        frame,
        refFieldPseudoMin: timeRange.from.valueOf(),
        refFieldPseudoMax: timeRange.to.valueOf(),
      })
    );
    const fields: Field[] = [];
    let hasTime = false;
    let hasValue = false;
    for (const field of nulled.fields) {
      if (field.type === FieldType.time) {
        hasTime = true;
        fields.push(field);
      } else if (field.type === FieldType.number) {
        hasValue = true;
        const values = field.values.map((v) => (Number.isFinite(v) ? v : null));
        const copy: Field = { ...field, values, state: { ...field.state, seriesIndex: seriesIndex++ } };
        copy.display = getDisplayProcessor({ field: copy, theme });
        fields.push(copy);
      }
    }
    if (hasTime && hasValue) {
      out.push({ ...nulled, fields });
    }
  }
  return out;
}

function TimeSeriesViz({ frames, options, width, height, timeRange, timeZone, theme }: VizProps) {
  const prepared = graphable(frames, theme, timeRange);
  if (prepared.length === 0) {
    return <NoData text="Data does not have a time field" />;
  }
  return (
    <div data-viz="timeseries">
      <TimeSeries
        frames={prepared}
        structureRev={1}
        timeRange={timeRange}
        timeZone={timeZone}
        width={width}
        height={height}
        legend={options.legend}
        options={options}
      />
    </div>
  );
}

function displayValues(props: VizProps, sparkline: boolean): FieldDisplay[] {
  return getFieldDisplayValues({
    data: props.frames,
    fieldConfig: props.fieldConfig,
    reduceOptions: props.options.reduceOptions as ReduceDataOptions,
    replaceVariables: (s: string) => s,
    theme: props.theme,
    timeZone: props.timeZone,
    sparkline,
  });
}

function StatViz(props: VizProps) {
  const { options, width, height, theme } = props;
  const graphMode = (options.graphMode ?? 'area') as BigValueGraphMode;
  const values = displayValues(props, graphMode !== BigValueGraphMode.None);
  return (
    <div data-viz="stat">
      <VizRepeater<FieldDisplay, DisplayValueAlignmentFactors>
        getValues={() => values}
        getAlignmentFactors={getDisplayValueAlignmentFactors}
        renderValue={({ value, width: w, height: h, alignmentFactors, count }) => (
          <BigValue
            value={value.display}
            count={count}
            sparkline={value.sparkline}
            colorMode={options.colorMode as BigValueColorMode}
            graphMode={graphMode}
            justifyMode={options.justifyMode as BigValueJustifyMode}
            textMode={options.textMode as BigValueTextMode}
            alignmentFactors={alignmentFactors}
            text={options.text}
            width={w}
            height={h}
            theme={theme}
            percentChangeColorMode={options.percentChangeColorMode}
            disableWideLayout={!options.wideLayout}
          />
        )}
        width={width}
        height={height}
        source={props.frames}
        autoGrid={true}
        renderCounter={0}
        orientation={(options.orientation ?? VizOrientation.Auto) as VizOrientation}
      />
    </div>
  );
}

function BarGaugeViz(props: VizProps) {
  const { options, width, height, theme } = props;
  const values = displayValues(props, false);
  return (
    <div data-viz="bargauge">
      <VizRepeater<FieldDisplay, DisplayValueAlignmentFactors>
        getValues={() => values}
        getAlignmentFactors={getDisplayValueAlignmentFactors}
        renderValue={({ value, width: w, height: h, alignmentFactors, orientation }) => (
          <BarGauge
            value={value.display}
            width={w}
            height={h}
            orientation={orientation}
            field={value.field}
            display={value.view?.getFieldDisplayProcessor(value.colIndex ?? 0)}
            text={options.text}
            theme={theme}
            itemSpacing={4}
            displayMode={options.displayMode}
            showUnfilled={options.showUnfilled}
            valueDisplayMode={options.valueMode}
            namePlacement={options.namePlacement}
            alignmentFactors={alignmentFactors}
          />
        )}
        width={width}
        height={height}
        source={props.frames}
        itemSpacing={4}
        renderCounter={0}
        minVizWidth={options.minVizWidth}
        minVizHeight={options.minVizHeight}
        maxVizHeight={options.maxVizHeight}
        orientation={(options.orientation ?? VizOrientation.Auto) as VizOrientation}
      />
    </div>
  );
}

function TableViz({ frames, options, fieldConfig, width, height, timeRange }: VizProps) {
  const frame = frames[options.frameIndex ?? 0] ?? frames[0];
  return (
    <div data-viz="table">
      <TableNG
        data={frame}
        width={width}
        height={height}
        noHeader={options.showHeader === false}
        showTypeIcons={options.showTypeIcons}
        cellHeight={options.cellHeight}
        fieldConfig={fieldConfig}
        timeRange={timeRange}
        enablePagination={false}
      />
    </div>
  );
}

/** One band per series: each point's bucket coloured by the field's colour for its value. */
function StateTimelineViz({ frames, width, height, timeRange, theme, options }: VizProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const series: Array<{ name: string; times: number[]; values: Array<number | null>; field: Field; step: number }> = [];
  for (const frame of frames) {
    const time = frame.fields.find((f) => f.type === FieldType.time);
    for (const field of frame.fields) {
      if (field.type !== FieldType.number || !time) {
        continue;
      }
      const times = time.values as number[];
      let step = time.config.interval ?? Infinity;
      for (let i = 1; i < times.length; i++) {
        step = Math.min(step, times[i] - times[i - 1]);
      }
      series.push({ name: getFieldDisplayName(field, frame, frames), times, values: field.values, field, step });
    }
  }
  const labelWidth = 200;
  const axisHeight = 24;
  useEffect(() => {
    const c = canvas.current;
    if (!c) {
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    c.width = width * ratio;
    c.height = height * ratio;
    const ctx = c.getContext('2d')!;
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const plotWidth = width - labelWidth;
    const from = timeRange.from.valueOf();
    const to = timeRange.to.valueOf();
    const x = (t: number) => labelWidth + ((t - from) / (to - from)) * plotWidth;
    const rowHeight = (height - axisHeight) / Math.max(series.length, 1);
    const band = rowHeight * (options.rowHeight ?? 0.9);
    ctx.font = `${theme.typography.bodySmall.fontSize} ${theme.typography.fontFamily}`;
    ctx.textBaseline = 'middle';
    series.forEach((s, row) => {
      const top = row * rowHeight + (rowHeight - band) / 2;
      ctx.fillStyle = theme.colors.text.primary;
      ctx.fillText(s.name, 4, row * rowHeight + rowHeight / 2, labelWidth - 8);
      ctx.globalAlpha = (s.field.config.custom?.fillOpacity ?? 70) / 100;
      for (let i = 0; i < s.times.length; i++) {
        const v = s.values[i];
        if (v === null || v === undefined || !Number.isFinite(v)) {
          continue;
        }
        const start = x(s.times[i]);
        const end = x(s.times[i] + (Number.isFinite(s.step) ? s.step : 0));
        ctx.fillStyle = s.field.display!(v).color ?? theme.colors.text.secondary;
        ctx.fillRect(start, top, Math.max(end - start, 1), band);
      }
      ctx.globalAlpha = 1;
    });
    // The time axis, with ticks at whole hours.
    ctx.fillStyle = theme.colors.text.secondary;
    ctx.textAlign = 'center';
    const hour = 3600_000;
    const stepHours = Math.max(1, Math.ceil((to - from) / hour / 12));
    for (let t = Math.ceil(from / hour) * hour; t <= to; t += stepHours * hour) {
      ctx.fillText(dateTime(t).utc().format('HH:mm'), x(t), height - axisHeight / 2);
    }
  }, [series, width, height, timeRange, theme, options.rowHeight]);
  return (
    <div data-viz="state-timeline" data-series={series.length}>
      <canvas ref={canvas} style={{ width, height, display: 'block' }} />
    </div>
  );
}

/** The classic colours Grafana's logs view gives each level. */
const LEVEL_COLORS: Record<string, string> = {
  critical: '#705da0',
  error: '#e24d42',
  warning: '#eab839',
  info: '#7eb26d',
  debug: '#1f78c1',
  trace: '#6ed0e0',
};

function level(s: unknown): string {
  const l = String(s ?? '').toLowerCase();
  if (['fatal', 'crit', 'critical', 'emerg', 'alert'].includes(l)) {
    return 'critical';
  }
  if (['err', 'eror', 'error'].includes(l)) {
    return 'error';
  }
  if (['warn', 'warning'].includes(l)) {
    return 'warning';
  }
  if (['info', 'information', 'informational', 'notice'].includes(l)) {
    return 'info';
  }
  if (['debug', 'dbug'].includes(l)) {
    return 'debug';
  }
  if (l === 'trace') {
    return 'trace';
  }
  return 'unknown';
}

function LogsViz({ frames, options, width, height, theme }: VizProps) {
  const rows: Array<{ t: number; line: string; level: string; key: string }> = [];
  for (const frame of frames) {
    const time = frame.fields.find((f) => f.type === FieldType.time);
    const body = frame.fields.find((f) => f.name === 'body' || f.name === 'Line') ?? frame.fields[1];
    const sev = frame.fields.find((f) => f.name === 'severity' || f.name === 'level');
    const id = frame.fields.find((f) => f.name === 'id');
    if (!time || !body) {
      continue;
    }
    for (let i = 0; i < frame.length; i++) {
      rows.push({
        t: time.values[i],
        line: String(body.values[i]),
        level: level(sev?.values[i]),
        key: String(id?.values[i] ?? `${frame.refId}-${i}`),
      });
    }
  }
  rows.sort((a, b) => (options.sortOrder === 'Ascending' ? a.t - b.t : b.t - a.t));
  const mono = "'DejaVu Sans Mono', 'Liberation Mono', monospace";
  return (
    <div data-viz="logs" data-rows={rows.length} style={{ width, height, overflow: 'hidden', fontFamily: mono }}>
      {rows.map((r) => (
        <div
          key={r.key}
          data-log-row
          style={{
            display: 'flex',
            gap: 8,
            fontSize: 12,
            lineHeight: '18px',
            borderLeft: `3px solid ${LEVEL_COLORS[r.level] ?? theme.colors.text.disabled}`,
            paddingLeft: 6,
            marginBottom: 1,
          }}
        >
          {options.showTime && (
            <span style={{ color: theme.colors.text.secondary, whiteSpace: 'nowrap' }}>
              {dateTime(r.t).utc().format('YYYY-MM-DD HH:mm:ss.SSS')}
            </span>
          )}
          <span style={{ color: LEVEL_COLORS[r.level] ?? theme.colors.text.secondary, minWidth: 56 }}>
            {r.level === 'unknown' ? '' : r.level}
          </span>
          <span
            style={{
              color: theme.colors.text.primary,
              whiteSpace: options.wrapLogMessage ? 'pre-wrap' : 'pre',
              wordBreak: 'break-all',
              overflow: 'hidden',
            }}
          >
            {r.line}
          </span>
        </div>
      ))}
    </div>
  );
}

export function NoData({ text = 'No data' }: { text?: string }) {
  return (
    <div
      data-viz="nodata"
      style={{ display: 'flex', alignItems: 'center', justifyContent: 'center', height: '100%', opacity: 0.75 }}
    >
      {text}
    </div>
  );
}
