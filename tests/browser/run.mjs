// The browser check: serves the host pages and the built plugin (dist/) on 127.0.0.1, opens them
// in headless Chromium, checks that the query editor (code and builder mode) and the config
// editor render and work, that every provisioned dashboard's panels draw their recorded data
// (panels/check.mjs), that nothing logs an error, and keeps screenshots as artifacts.
//
// Needs: `npm run build` (dist/module.js), `node tests/browser/build-host.mjs`, and Chromium at
// $CHROMIUM or /usr/bin/chromium. UPDATE_DOCS_SCREENSHOT=1 also copies the query editor's
// screenshot to docs/images/query-editor.png and the dashboards' to docs/images/dashboards/.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { checkDashboards } from './panels/check.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const artifacts = process.env.BROWSER_ARTIFACTS ?? path.join(here, 'artifacts');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const docsScreenshot = path.join(root, 'docs', 'images', 'query-editor.png');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
};

// Grafana serves @grafana/ui's icons from public/build/img/icons/.
const ICONS = path.join(root, 'node_modules', '@grafana', 'ui', 'dist', 'public', 'img', 'icons');

// Serves only what the page needs: the host page, its bundle, the plugin's dist/ and the icons.
function serve(notFound) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let rel = decodeURIComponent(url.pathname);
    if (rel === '/') {
      rel = '/tests/browser/host/index.html';
    }
    const allowed = ['/tests/browser/host/', '/tests/browser/panels/', '/tests/browser/.build/', '/dist/'];
    let file = path.join(root, path.normalize(rel));
    if (rel === '/public/build/img/icons/unicons/spinner.svg') {
      // Grafana ships this one icon itself, outside @grafana/ui.
      file = path.join(here, 'host', 'spinner.svg');
    } else if (rel.startsWith('/public/build/img/icons/')) {
      file = path.join(ICONS, path.normalize(rel.slice('/public/build/img/icons/'.length)));
    } else if (!allowed.some((p) => rel.startsWith(p))) {
      file = '';
    }
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      notFound.push(rel);
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const failures = [];
const passes = [];
function check(name, ok, detail = '') {
  (ok ? passes : failures).push(ok ? name : `${name}${detail ? `: ${detail}` : ''}`);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? ` (${detail})` : ''}`);
}

async function main() {
  for (const need of ['dist/module.js', 'tests/browser/.build/host.js', 'tests/browser/.build/panels.js']) {
    if (!fs.existsSync(path.join(root, need))) {
      throw new Error(`${need} is missing: run npm run build and node tests/browser/build-host.mjs first`);
    }
  }
  fs.mkdirSync(artifacts, { recursive: true });
  const notFound = [];
  const server = await serve(notFound);
  const base = `http://127.0.0.1:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'logsift-chromium-'));

  // A fresh profile per run; Playwright passes it to Chromium as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        consoleErrors.push(msg.text());
      }
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    // Nothing may leave the machine: any request that is not to our server fails the check.
    const outside = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(base) || url.startsWith('data:') || url.startsWith('blob:')) {
        return route.continue();
      }
      outside.push(url);
      return route.abort();
    });

    await page.goto(base + '/', { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.waitForFunction(() => window.__hostReady || window.__hostError, null, { timeout: 60_000 });
    const hostError = await page.evaluate(() => window.__hostError);
    check('plugin module loads as Grafana loads it (AMD, shared externals)', !hostError, hostError);
    if (hostError) {
      return;
    }

    // --- code mode -----------------------------------------------------------------------------
    const code = page.getByTestId('section-code');
    await code.locator('.monaco-editor .view-lines').waitFor({ timeout: 30_000 });
    const codeText = await code.locator('.monaco-editor .view-lines').innerText();
    check(
      'code mode shows the query in Monaco',
      codeText.replace(/\s+/g, ' ').includes('count_over_time({job="api", env="prod"}'),
      codeText
    );

    const tokens = await page.evaluate(() => {
      const line = 'sum by (level) (count_over_time({job="api"} |= "timeout" | json | dur > 5s [$__auto]))';
      const [toks] = window.__monaco.editor.tokenize(line, 'logsift-logql');
      return toks.map((t, i) => [line.slice(t.offset, toks[i + 1]?.offset ?? line.length), t.type]);
    });
    const typeOf = (text) => tokens.find(([t]) => t === text)?.[1];
    const expected = [
      ['sum', 'predefined.function.logql'],
      ['by', 'keyword.logql'],
      ['count_over_time', 'predefined.function.logql'],
      ['job', 'attribute.name.logql'],
      ['|=', 'operator.filter.logql'],
      ['timeout', 'string.logql'],
      ['json', 'keyword.parser.logql'],
      ['5s', 'number.duration.logql'],
      ['$__auto', 'variable.logql'],
    ];
    const wrong = expected
      .filter(([t, type]) => typeOf(t) !== type)
      .map(([t, type]) => `${t}: ${typeOf(t)} != ${type}`);
    check('Monarch tokenizer classifies LogQL', wrong.length === 0, wrong.join('; '));

    await code.getByText('≈ 14 chunks, 3.40 MB to scan').waitFor({ timeout: 10_000 });
    const costAsked = await page.evaluate(() =>
      window.__requests.filter((r) => r.path === 'cost').map((r) => r.params)
    );
    check(
      'cost estimate is asked of the backend and shown before running',
      costAsked.some((p) => p.expr?.includes('count_over_time') && p.start && p.end),
      JSON.stringify(costAsked)
    );
    await code.screenshot({ path: path.join(artifacts, 'code-mode.png') });

    // --- parse error marker ---------------------------------------------------------------------
    const markers = await page
      .waitForFunction(
        () => {
          const m = window.__monaco.editor.getModelMarkers({ owner: 'logsift-logql' });
          return m.length > 0 ? m.map((x) => ({ col: x.startColumn, end: x.endColumn, msg: x.message })) : false;
        },
        null,
        { timeout: 10_000 }
      )
      .then((h) => h.jsonValue());
    check(
      'parse error from the server is marked where it is',
      markers.length === 1 &&
        markers[0].col === 36 &&
        markers[0].end === 38 &&
        markers[0].msg === 'syntax error: invalid number, duration or byte size "5x"',
      JSON.stringify(markers)
    );
    const errorSection = page.getByTestId('section-error');
    await errorSection.locator('.squiggly-error').waitFor({ timeout: 10_000 });
    check('the error is drawn as a squiggle', true);
    const errorText = await errorSection.getByTestId('logql-error').innerText();
    check(
      'the error is also written under the editor',
      errorText.startsWith('Line 1, column 36: syntax error: invalid number'),
      errorText
    );
    await errorSection.screenshot({ path: path.join(artifacts, 'code-error.png') });

    // --- completion -----------------------------------------------------------------------------
    const completion = page.getByTestId('section-completion');
    await completion.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('End');
    await page.keyboard.press('Control+Space');
    const suggest = page.locator('.suggest-widget.visible');
    await suggest.waitFor({ timeout: 10_000 });
    await suggest.getByText('env', { exact: true }).waitFor({ timeout: 10_000 });
    const offered = await suggest.locator('.monaco-list-row .label-name').allInnerTexts();
    check(
      'label names are completed from the backend, minus those in use',
      offered.includes('env') && !offered.includes('job'),
      offered.join(',')
    );
    await page.screenshot({ path: path.join(artifacts, 'code-completion.png'), clip: await completion.boundingBox() });
    await page.keyboard.press('Enter');
    // Accepting `env=` reopens the list with env's values.
    await suggest.getByText('prod', { exact: true }).waitFor({ timeout: 10_000 });
    check('accepting a label offers its values', true);
    await page.keyboard.press('Escape');

    // --- builder --------------------------------------------------------------------------------
    const builder = page.getByTestId('section-builder');
    await builder.getByTestId('logsift-query-builder').waitFor();
    const builderChecks = [
      ['Streams', builder.getByText('Streams')],
      ['Line filter text', builder.getByLabel('Line filter text 1')],
      ['Parser radio', builder.getByRole('radio', { name: 'logfmt' })],
      ['Label filter value', builder.getByLabel('Label filter value 1')],
    ];
    for (const [name, loc] of builderChecks) {
      check(`builder shows ${name}`, (await loc.count()) > 0);
    }
    check(
      'builder line filter holds "timeout"',
      (await builder.getByLabel('Line filter text 1').inputValue()) === 'timeout'
    );
    check('builder parser is logfmt', await builder.getByRole('radio', { name: 'logfmt' }).isChecked());
    await builder.getByRole('button', { name: 'Line filter', exact: true }).click();
    await builder.getByLabel('Line filter text 2').fill('retry');
    const preview = await builder.getByTestId('builder-preview').innerText();
    check(
      'builder edits render to LogQL',
      preview === '{job="api", env="prod"} |= "timeout" |= "retry" | logfmt | level="error"',
      preview
    );
    await builder.screenshot({ path: path.join(artifacts, 'builder-mode.png') });

    // --- template variable editor ---------------------------------------------------------------
    const variable = page.getByTestId('section-variable');
    await variable.getByTestId('logsift-variable-editor').waitFor({ timeout: 10_000 });
    check(
      'variable editor shows a label values query',
      (await variable.getByRole('radio', { name: 'Label values' }).isChecked()) &&
        (await variable.getByRole('combobox', { name: 'Label' }).inputValue()) === 'job' &&
        (await variable.getByLabel('Stream selector').inputValue()) === '{env="prod"}'
    );
    await variable.getByRole('radio', { name: 'Label names' }).click();
    const variableJson = await variable.getByTestId('query-json').innerText();
    check(
      'variable editor switches to label names',
      variableJson === '{"refId":"V","type":"labelNames","stream":"{env=\\"prod\\"}"}',
      variableJson
    );
    await variable.screenshot({ path: path.join(artifacts, 'variable-editor.png') });

    // --- config editor --------------------------------------------------------------------------
    const config = page.getByTestId('section-config');
    check('config shows the URL', (await config.locator('#logsift-url').inputValue()) === 'http://logsift:3100');
    check(
      'config shows a saved token as configured',
      (await config.locator('#logsift-api-token').inputValue()) === 'configured'
    );
    await config.getByRole('button', { name: 'Reset' }).click();
    check('resetting the token makes it editable', await config.locator('#logsift-api-token').isEditable());
    check('config shows the derived field', (await config.getByLabel('Derived field name').inputValue()) === 'TraceID');
    await config.screenshot({ path: path.join(artifacts, 'config-editor.png') });

    await page.screenshot({ path: path.join(artifacts, 'editors.png'), fullPage: true });

    // The picture for docs/: the code mode as a user sees it, without the page's scaffolding.
    await page.addStyleTag({ content: '[data-testid="query-json"], section h3 { display: none !important; }' });
    await code.screenshot({ path: path.join(artifacts, 'query-editor.png') });
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      fs.mkdirSync(path.dirname(docsScreenshot), { recursive: true });
      fs.copyFileSync(path.join(artifacts, 'query-editor.png'), docsScreenshot);
      console.log(`wrote ${path.relative(root, docsScreenshot)}`);
    }

    check('no console errors', consoleErrors.length === 0, consoleErrors.join(' | '));

    // --- dashboards -----------------------------------------------------------------------------
    // Their pages share the context: the route below keeps them on 127.0.0.1 too.
    await checkDashboards({ context, base, root, artifacts, check });

    check('every file the pages asked for was there', notFound.length === 0, notFound.join(', '));
    check('no request left 127.0.0.1', outside.length === 0, outside.join(', '));
  } finally {
    await context.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main()
  .catch((e) => {
    failures.push(String(e?.stack ?? e));
    console.error(e);
  })
  .finally(() => {
    console.log(`screenshots: ${artifacts}`);
    console.log(`browser: ${passes.length} passed, ${failures.length} failed`);
    process.exit(failures.length === 0 ? 0 : 1);
  });
