#!/usr/bin/env bash
# CI entry point of the storefront SDK: install, build, unit tests, then the real-browser test
# (headless Chromium + the real collector). Exits non-zero on any failure; the browser test
# starts and stops its own collector, static server and browser.
set -euo pipefail

SDK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "$SDK_DIR/.." && pwd)"
cd "$SDK_DIR"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "npm ci"
npm ci --no-audit --no-fund --prefer-offline

step "build"
npm run build

step "typecheck"
npm run typecheck

step "unit tests"
npm test

step "browser prerequisites"
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM_PATH" ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "Chromium is missing at $CHROMIUM_PATH and this is not root: install the Debian package chromium" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
export CHROMIUM_PATH

CLICKSTREAM_COLLECTOR_BIN="${CLICKSTREAM_COLLECTOR_BIN:-$REPO_DIR/target/debug/clickstream-collector}"
if [[ ! -x "$CLICKSTREAM_COLLECTOR_BIN" ]]; then
  (cd "$REPO_DIR" && cargo build -p collector)
fi
export CLICKSTREAM_COLLECTOR_BIN

step "browser test"
npm run test:browser

step "done"
