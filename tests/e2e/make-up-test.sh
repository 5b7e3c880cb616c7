#!/usr/bin/env bash
# The `make up` browser test (tests/e2e/make_up.test.mjs): builds what the local twin needs
# (debug binaries, the venv, the dashboard's and the SDK's npm packages, Chromium), then runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -p collector -p batcher -p loader -p simulator
bash scripts/python-env.sh >/dev/null
bash dashboard/scripts/build.sh >/dev/null
(cd storefront-sdk && npm ci --no-audit --no-fund --prefer-offline >/dev/null && npm run build >/dev/null)
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM_PATH" ]]; then
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi
CLICKSTREAM_UP_BIN_DIR="$TARGET_DIR/debug" timeout 600 node --test --test-timeout=480000 tests/e2e/make_up.test.mjs
