#!/usr/bin/env bash
# Dashboard tests: vendor the chart library, make sure Chromium and the project
# venv exist, build a small warehouse (dbt fixture + synthetic shop, dbt run),
# then run the API tests (pytest) and the browser test (node --test, headless
# Chromium). Artifacts: dashboard/test-artifacts/ (screenshots, warehouse).
#
# Env: CHROMIUM_PATH (default /usr/bin/chromium; installed with apt-get when
# missing), KEEP_WAREHOUSE=1 reuses test-artifacts/warehouse.duckdb if present.
set -euo pipefail

DASH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "${DASH}/.." && pwd)"
ARTIFACTS="${DASH}/test-artifacts"
WAREHOUSE="${ARTIFACTS}/warehouse.duckdb"
PY="${REPO}/.venv/bin/python"
SECONDS=0

step() { printf '\n== %s (%ss)\n' "$*" "${SECONDS}"; }

step "chart library"
bash "${DASH}/scripts/build.sh"

step "chromium"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "${CHROMIUM_PATH}" ]]; then
  if [[ "${CHROMIUM_PATH}" != /usr/bin/chromium ]]; then
    echo "CHROMIUM_PATH=${CHROMIUM_PATH} does not exist" >&2
    exit 1
  fi
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  ${SUDO} apt-get update
  ${SUDO} apt-get install -y --no-install-recommends chromium
fi
"${CHROMIUM_PATH}" --version 2>/dev/null || true

step "python venv"
(cd "${REPO}" && bash scripts/python-env.sh)

step "warehouse"
mkdir -p "${ARTIFACTS}"
if [[ "${KEEP_WAREHOUSE:-0}" == 1 && -f "${WAREHOUSE}" ]]; then
  echo "reusing ${WAREHOUSE}"
else
  rm -f "${WAREHOUSE}" "${WAREHOUSE}.wal"
  timeout 600 "${PY}" "${DASH}/tests/make_warehouse.py" "${WAREHOUSE}"
fi

step "API tests (pytest)"
(cd "${DASH}/tests" && DASHBOARD_TEST_DUCKDB_PATH="${WAREHOUSE}" timeout 300 "${PY}" -m pytest -q test_api.py)

step "browser test (node --test, headless chromium)"
(cd "${DASH}" && CLICKSTREAM_DUCKDB_PATH="${WAREHOUSE}" CLICKSTREAM_PYTHON="${PY}" \
  timeout 240 node --test --test-timeout=180000 tests/browser.test.mjs)

step "done"
echo "screenshot: ${ARTIFACTS}/dashboard.png"
echo "screenshot (narrowed date range): ${ARTIFACTS}/dashboard-filtered.png"
