// force timezone to UTC to allow tests to work regardless of local timezone
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

// ES-module-only packages that @grafana/* 13 pull in beyond the scaffold's list.
const extraESModules = ['@react-hookz/web', '@ver0/deep-equal'];

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  transform: {
    ...base.transform,
    // Newer d3 releases ship their ES modules as .mjs only.
    '^.+\\.mjs$': base.transform['^.+\\.(t|j)sx?$'],
  },
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, ...extraESModules])],
  // The editor tests drive @grafana/ui through jsdom: seconds per test on an idle machine, many
  // times that on a busy shared one. A generous bound keeps a slow machine from failing them.
  testTimeout: 120_000,
};
