// The dashboards part of the browser check (run.mjs calls it): opens the panels page for each
// provisioned dashboard, drawn from tests/browser/panels/data/<uid>.json, and checks that every
// panel of the dashboard is there, that each panel's queries went through the datasource's
// frontend exactly as recorded and none errored, that a panel shows "No data" only when its
// recorded answer holds no rows, and that each panel with data drew it. Screenshots go to the
// artifacts folder; UPDATE_DOCS_SCREENSHOT=1 also copies them to docs/images/dashboards/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Copies a screenshot into docs/, through pngquant when it is installed (Debian's pngquant):
 * a dashboard's screenshot is 300-500 KB as Chromium writes it and about a quarter of that with
 * a 256-colour palette, which these flat dark panels lose nothing visible to.
 */
function writeDocsImage(src, dst, root) {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const q = spawnSync(process.env.PNGQUANT ?? 'pngquant', [
    '--quality',
    '60-90',
    '--strip',
    '--force',
    '--output',
    dst,
    src,
  ]);
  if (q.error || q.status !== 0) {
    fs.copyFileSync(src, dst);
    console.log(`pngquant did not run (${q.error?.message ?? `exit ${q.status}`}): copied the screenshot as it is`);
  }
  const size = fs.statSync(dst).size;
  console.log(`wrote ${path.relative(root, dst)} (${Math.round(size / 1024)} KB)`);
}

/** Rows in a recorded /api/ds/query answer, from its frames' columns. */
function recordedRows(response) {
  let rows = 0;
  for (const r of Object.values(response?.results ?? {})) {
    for (const f of r.frames ?? []) {
      rows += f.data?.values?.[0]?.length ?? 0;
    }
  }
  return rows;
}

/** What each panel type must have put on the page when it has data. */
const DRAWN = {
  timeseries: async (el) => (await el.locator('[data-viz="timeseries"] canvas').count()) > 0,
  'state-timeline': async (el) =>
    Number(await el.locator('[data-viz="state-timeline"]').getAttribute('data-series')) > 0 &&
    (await el.locator('[data-viz="state-timeline"] canvas').count()) > 0,
  stat: async (el) => /\d/.test(await el.locator('[data-viz="stat"]').innerText()),
  bargauge: async (el) => /\d/.test(await el.locator('[data-viz="bargauge"]').innerText()),
  table: async (el) => (await el.locator('[data-viz="table"] [role="gridcell"]').first().innerText()) !== '',
  logs: async (el) => (await el.locator('[data-viz="logs"] [data-log-row]').count()) > 0,
};

export async function checkDashboards({ context, base, root, artifacts, check }) {
  const dashDir = path.join(root, 'provisioning', 'dashboards');
  const dataDir = path.join(root, 'tests', 'browser', 'panels', 'data');
  const docsDir = path.join(root, 'docs', 'images', 'dashboards');
  const dashboards = fs
    .readdirSync(dashDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dashDir, f), 'utf8')));
  check('there are provisioned dashboards to draw', dashboards.length > 0);

  // One page draws every dashboard in turn: loading the bundle once saves seconds a dashboard.
  const page = await context.newPage();
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      errors.push(msg.text());
    }
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  try {
    await page.setViewportSize({ width: 1600, height: 900 });
    await page.goto(`${base}/tests/browser/panels/index.html`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.waitForFunction(() => window.__showDashboard || window.__panelsError, null, { timeout: 60_000 });
    const loadError = await page.evaluate(() => window.__panelsError);
    check('the dashboards page loads the plugin', !loadError, loadError);
    if (loadError) {
      return;
    }
    for (const dash of dashboards) {
      await checkDashboard({ page, errors, dash, dataDir, docsDir, root, artifacts, check });
    }
  } finally {
    await page.close();
  }
}

async function checkDashboard({ page, errors, dash, dataDir, docsDir, root, artifacts, check }) {
  const fixturePath = path.join(dataDir, `${dash.uid}.json`);
  if (!fs.existsSync(fixturePath)) {
    check(
      `${dash.uid}: fixture exists`,
      false,
      `${path.relative(root, fixturePath)} is missing: run go test ./provisioning/render -update`
    );
    return;
  }
  const fixture = JSON.parse(fs.readFileSync(fixturePath, 'utf8'));
  const errorsBefore = errors.length;
  await page.setViewportSize({ width: fixture.layout.width, height: 900 });
  await page.evaluate((uid) => window.__showDashboard(uid), dash.uid);
  const pageError = await page.evaluate(() => window.__panelsError);
  check(`${dash.uid}: the page draws the dashboard`, !pageError, pageError);
  if (pageError) {
    return;
  }
  // The whole dashboard in the window, as on a tall screen: the table grid and the panels
  // skip drawing what is outside the window.
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: fixture.layout.width, height });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const results = await page.evaluate(() => window.__panels);
  const onPage = await page.getByTestId('panel').count();
  check(
    `${dash.uid}: all ${dash.panels.length} panels of the dashboard are on the page`,
    onPage === dash.panels.length && results.length === dash.panels.length,
    `${onPage} on the page, ${results.length} run`
  );
  const failed = results.filter((r) => r.state === 'error').map((r) => `${r.title}: ${r.error}`);
  check(`${dash.uid}: every panel's queries ran as recorded, without error`, failed.length === 0, failed.join(' | '));

  const wrong = [];
  for (const r of results) {
    if (r.state === 'row' || r.state === 'error') {
      continue;
    }
    const fp = fixture.panels.find((p) => p.panel.id === r.id);
    const recorded = recordedRows(fp?.response);
    if (r.state === 'nodata' && recorded > 0) {
      wrong.push(`${r.title}: "No data" but the answer has ${recorded} rows`);
    }
    if (r.state === 'data') {
      const drawn = DRAWN[r.type];
      const el = page.locator(`[data-testid="panel"][data-panel-id="${r.id}"]`);
      if (!drawn) {
        wrong.push(`${r.title}: no check for panel type ${r.type}`);
      } else if (!(await drawn(el))) {
        wrong.push(`${r.title}: has ${r.rows} rows but the ${r.type} drew nothing`);
      }
    }
  }
  const withData = results.filter((r) => r.state === 'data').length;
  const without = results.filter((r) => r.state === 'nodata').length;
  check(
    `${dash.uid}: each panel drew its data (${withData} with data, ${without} without)`,
    wrong.length === 0 && withData > 0,
    wrong.join(' | ')
  );
  const newErrors = errors.slice(errorsBefore);
  check(`${dash.uid}: no console errors`, newErrors.length === 0, newErrors.join(' | '));

  const shot = path.join(artifacts, `dashboard-${dash.uid}.png`);
  await page.locator('#root').screenshot({ path: shot });
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    writeDocsImage(shot, path.join(docsDir, `${dash.uid}.png`), root);
  }
}
