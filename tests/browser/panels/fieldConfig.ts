/**
 * Field config as Grafana applies it to a panel's data: the panel plugin's defaults under the
 * dashboard's fieldConfig, then its overrides. Grafana's registry of standard field options
 * lives in Grafana's app, not in @grafana/data, so this page registers the options these
 * dashboards use, with @grafana/data's own override processors.
 */
import {
  FieldColorModeId,
  FieldConfigOptionsRegistry,
  FieldConfigPropertyItem,
  FieldConfigSource,
  identityOverrideProcessor,
  numberOverrideProcessor,
  stringOverrideProcessor,
  thresholdsOverrideProcessor,
  ThresholdsMode,
  unitOverrideProcessor,
  valueMappingsOverrideProcessor,
} from '@grafana/data';

/** Grafana's default thresholds (the standard "Thresholds" option). */
const defaultThresholds = {
  mode: ThresholdsMode.Absolute,
  steps: [
    { value: -Infinity, color: 'green' },
    { value: 80, color: 'red' },
  ],
};

/** The time series panel's custom defaults (public/app/plugins/panel/timeseries/config.ts). */
const graphDefaults = {
  drawStyle: 'line',
  lineInterpolation: 'linear',
  lineWidth: 1,
  fillOpacity: 0,
  gradientMode: 'none',
  barAlignment: 0,
  barWidthFactor: 0.6,
  spanNulls: false,
  insertNulls: false,
  showPoints: 'auto',
  pointSize: 5,
  stacking: { mode: 'none', group: 'A' },
  axisPlacement: 'auto',
  axisLabel: '',
  axisColorMode: 'text',
  axisBorderShow: false,
  axisCenteredZero: false,
  axisGridShow: true,
  scaleDistribution: { type: 'linear' },
  hideFrom: { legend: false, tooltip: false, viz: false },
  thresholdsStyle: { mode: 'off' },
};

/** Each panel plugin's field config defaults: its color mode and its custom options. */
const PANEL_DEFAULTS: Record<string, { color: { mode: FieldColorModeId }; custom: Record<string, unknown> }> = {
  timeseries: { color: { mode: FieldColorModeId.PaletteClassic }, custom: graphDefaults },
  stat: { color: { mode: FieldColorModeId.Thresholds }, custom: {} },
  bargauge: { color: { mode: FieldColorModeId.Thresholds }, custom: {} },
  table: {
    color: { mode: FieldColorModeId.Thresholds },
    custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false },
  },
  'state-timeline': {
    color: { mode: FieldColorModeId.ContinuousGrYlRd },
    custom: { lineWidth: 0, fillOpacity: 70, hideFrom: { legend: false, tooltip: false, viz: false } },
  },
};

function option(
  id: string,
  process: FieldConfigPropertyItem['process'],
  defaultValue?: unknown,
  isCustom = false
): FieldConfigPropertyItem {
  return {
    id: isCustom ? `custom.${id}` : id,
    path: id,
    name: id,
    isCustom,
    process,
    defaultValue,
    shouldApply: () => true,
    editor: () => null,
    override: () => null,
  } as FieldConfigPropertyItem;
}

/**
 * The registry and defaults for one panel: standard options with the plugin's defaults, and a
 * custom option for every custom key the plugin or the dashboard sets.
 */
export function fieldConfigFor(
  panelType: string,
  source: FieldConfigSource | undefined
): { registry: FieldConfigOptionsRegistry; fieldConfig: FieldConfigSource } {
  const plugin = PANEL_DEFAULTS[panelType] ?? { color: { mode: FieldColorModeId.Thresholds }, custom: {} };
  const defaults = { ...(source?.defaults ?? {}) };
  const custom = { ...plugin.custom, ...((defaults.custom as Record<string, unknown>) ?? {}) };
  const items: FieldConfigPropertyItem[] = [
    option('unit', unitOverrideProcessor),
    option('decimals', numberOverrideProcessor),
    option('min', numberOverrideProcessor),
    option('max', numberOverrideProcessor),
    option('displayName', stringOverrideProcessor),
    option('noValue', stringOverrideProcessor),
    option('mappings', valueMappingsOverrideProcessor),
    option('thresholds', thresholdsOverrideProcessor, defaultThresholds),
    option('color', identityOverrideProcessor, plugin.color),
    option('links', identityOverrideProcessor),
  ];
  for (const key of Object.keys(custom)) {
    items.push(option(key, identityOverrideProcessor, custom[key], true));
  }
  const registry = new FieldConfigOptionsRegistry(() => items);
  // The defaults a plugin declares apply where the dashboard sets nothing.
  const withDefaults: Record<string, unknown> = { ...defaults, custom };
  for (const item of items) {
    if (!item.isCustom && withDefaults[item.path] === undefined && item.defaultValue !== undefined) {
      withDefaults[item.path] = item.defaultValue;
    }
  }
  return { registry, fieldConfig: { defaults: withDefaults, overrides: source?.overrides ?? [] } };
}
