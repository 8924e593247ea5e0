#!/usr/bin/env bash
# Tests the plugin frontend: npm packages (npm ci, only when node_modules is missing or was
# installed from another package-lock.json), typecheck, lint and formatting, unit tests, the
# production build (dist/module.js and dist/plugin.json) and the browser check (the built
# editors in Debian's headless Chromium).
#
# Exits non-zero on the first failure. Screenshots land in tests/browser/artifacts/ (or
# $BROWSER_ARTIFACTS); UPDATE_DOCS_SCREENSHOT=1 also rewrites docs/images/query-editor.png.
#
# Chromium: $CHROMIUM, else `chromium` on PATH. When it is missing and apt-get can run (as root,
# or through password-less sudo) it is installed while npm works. Otherwise the browser check is
# skipped, unless LOGSIFT_REQUIRE_SERVICES=1 (CI), which makes every missing tool a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }
require=${LOGSIFT_REQUIRE_SERVICES:-}

# missing <what>: fails under LOGSIFT_REQUIRE_SERVICES=1, else returns so the caller can skip.
missing() {
  if [ "$require" = "1" ]; then
    echo "FAIL: $* (LOGSIFT_REQUIRE_SERVICES=1 forbids skipping)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing "node and npm (Node 20 or newer) are needed for the frontend tests"
  exit 0
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node $(node --version) is too old: the frontend needs Node 20 or newer" >&2
  exit 1
fi

# The create-plugin build copies both into dist/, and Grafana's plugin validator wants them there.
for f in LICENSE CHANGELOG.md; do
  if [ ! -f "$f" ]; then
    echo "$f is missing at the repository root: the create-plugin build copies it into dist/" >&2
    exit 1
  fi
done

# Chromium installs in the background while npm and the unit tests run; apt mostly waits on the
# network.
chromium=${CHROMIUM:-$(command -v chromium || true)}
chromium_log=$(mktemp)
trap 'rm -f "$chromium_log"' EXIT
chromium_pid=
browser=1
if [ -z "$chromium" ]; then
  as_root=
  if [ "$(id -u)" -eq 0 ]; then
    as_root=" "
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
  fi
  if [ -n "$as_root" ] && command -v apt-get >/dev/null 2>&1; then
    step "installing chromium (apt-get, in the background)"
    (
      $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
    ) >"$chromium_log" 2>&1 &
    chromium_pid=$!
  else
    missing "chromium is not installed, and apt-get cannot install it here (needs apt-get, and root or password-less sudo): no browser check"
    browser=0
  fi
fi

# npm ci only when node_modules is missing or was installed from another package-lock.json.
stamp=node_modules/.logsift-package-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  step "npm ci"
  npm ci --no-audit --no-fund --prefer-offline
  echo "$lock_sum" >"$stamp"
else
  step "node_modules matches package-lock.json: no npm ci"
fi

step "typecheck"
npm run --silent typecheck

step "lint and formatting"
npm run --silent lint
npm run --silent format:check

step "unit tests"
npm run --silent test:ci

step "production build"
npm run --silent build
node -e '
const fs = require("fs");
for (const f of ["dist/module.js", "dist/plugin.json"]) {
  if (!fs.existsSync(f) || fs.statSync(f).size === 0) { console.error(f + " was not built"); process.exit(1); }
}
const p = JSON.parse(fs.readFileSync("dist/plugin.json", "utf8"));
const bad = [];
if (p.id !== "logsift-datasource") bad.push("id " + p.id);
if (p.executable !== "gpx_logsift") bad.push("executable " + p.executable);
for (const k of ["backend", "logs", "metrics", "streaming", "alerting", "annotations"]) if (p[k] !== true) bad.push(k + " not true");
if (/%VERSION%|%TODAY%/.test(JSON.stringify(p.info))) bad.push("version/date placeholders left in info");
if (bad.length) { console.error("dist/plugin.json: " + bad.join(", ")); process.exit(1); }
console.log("dist/: module.js " + fs.statSync("dist/module.js").size + " bytes, plugin.json " + p.id + " " + p.info.version);
'

if [ "$browser" = "1" ]; then
  step "browser check: host page"
  node tests/browser/build-host.mjs

  if [ -n "$chromium_pid" ]; then
    step "waiting for the chromium install"
    if ! wait "$chromium_pid"; then
      cat "$chromium_log" >&2
      echo "installing chromium with apt-get failed" >&2
      exit 1
    fi
    chromium=$(command -v chromium || true)
    if [ -z "$chromium" ]; then
      echo "apt-get installed chromium but it is not on PATH" >&2
      exit 1
    fi
  fi

  step "browser check ($chromium)"
  CHROMIUM="$chromium" node tests/browser/run.mjs
fi

step "frontend tests passed"
