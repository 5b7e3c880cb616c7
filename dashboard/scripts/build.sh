#!/usr/bin/env bash
# Install the dashboard's npm dev dependencies (package-lock.json) and vendor the
# chart library into web/vendor/ (gitignored): the page never loads from a CDN.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d node_modules/echarts || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "dashboard: npm ci"
  npm ci --no-audit --no-fund
fi
mkdir -p web/vendor
cp node_modules/echarts/dist/echarts.min.js web/vendor/echarts.min.js
cp node_modules/echarts/LICENSE web/vendor/echarts.LICENSE.txt
echo "dashboard: vendored echarts $(node -p 'require("./node_modules/echarts/package.json").version') into dashboard/web/vendor/"
