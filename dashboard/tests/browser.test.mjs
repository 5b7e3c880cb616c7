// Browser test of the dashboard: headless Chromium (playwright-core driving the
// system /usr/bin/chromium) against dashboard/server.py on a free 127.0.0.1 port.
//
//   CLICKSTREAM_DUCKDB_PATH=/path/to/warehouse.duckdb node --test tests/browser.test.mjs
//
// Env: CLICKSTREAM_DUCKDB_PATH (required: a warehouse built by dbt, e.g. by
// tests/make_warehouse.py), CLICKSTREAM_PYTHON (default <repo>/.venv/bin/python),
// CHROMIUM_PATH (default /usr/bin/chromium). Writes test-artifacts/dashboard.png
// (full range) and test-artifacts/dashboard-filtered.png (narrowed range).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const DASHBOARD = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(DASHBOARD, "..");
const ARTIFACTS = join(DASHBOARD, "test-artifacts");
const PYTHON = process.env.CLICKSTREAM_PYTHON || join(REPO, ".venv", "bin", "python");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const WAREHOUSE = process.env.CLICKSTREAM_DUCKDB_PATH;
const TILES = ["traffic", "conversion", "sessions", "top", "funnel", "latest"];

let server;
let baseUrl;
let browser;
let page;
const pageErrors = [];

function startServer() {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(PYTHON, [join(DASHBOARD, "server.py"), "--duckdb", WAREHOUSE, "--listen", "127.0.0.1:0", "--quiet"],
      { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => { child.kill("SIGTERM"); reject(new Error(`server did not start in 20 s\n${out}\n${err}`)); }, 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) { clearTimeout(timer); resolvePromise({ child, url: m[0] }); }
    });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})\n${out}\n${err}`)); });
  });
}

async function apiJson(path) {
  const res = await fetch(new URL(path, baseUrl), { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
  return res.json();
}

async function waitForTiles(label) {
  // Bounded: 30 s for every tile to leave "loading" and be ready with rows.
  await page.waitForFunction((tiles) => tiles.every((t) => {
    const el = document.querySelector(`[data-tile="${t}"]`);
    return el && el.dataset.state === "ready" && Number(el.dataset.rows) > 0;
  }), TILES, { timeout: 30_000, polling: 100 }).catch(async (e) => {
    const states = await page.evaluate((tiles) => tiles.map((t) => {
      const el = document.querySelector(`[data-tile="${t}"]`);
      return `${t}=${el?.dataset.state}/${el?.dataset.rows} ${el?.dataset.message || ""}`;
    }), TILES);
    throw new Error(`${label}: tiles not ready: ${states.join(", ")} (${e.message})`);
  });
}

// ECharts animates updates (~300 ms): let them settle so screenshots show final values.
const settle = () => page.waitForTimeout(900);

const kpi = (name) => page.$eval(`[data-kpi="${name}"]`, (el) => ({ value: el.dataset.value, text: el.querySelector(".kpi-value").textContent }));

before(async () => {
  assert.ok(WAREHOUSE, "set CLICKSTREAM_DUCKDB_PATH to a dbt-built DuckDB warehouse (see tests/make_warehouse.py)");
  assert.ok(existsSync(WAREHOUSE), `no warehouse at ${WAREHOUSE}`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ child: server, url: baseUrl } = await startServer());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--no-first-run", "--disable-quic", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
  page.setDefaultTimeout(30_000);
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`console: ${m.text()}`); });
  // Offline by design: anything not served by the dashboard itself is a failure.
  await page.route("**/*", (route) => (route.request().url().startsWith(baseUrl) ? route.continue() : route.abort()));
});

after(async () => {
  await browser?.close().catch(() => {});
  if (server && server.exitCode === null) server.kill("SIGTERM");
});

test("every tile renders with data, the date filter changes the numbers, screenshot saved", async () => {
  const range = await apiJson("/api/date-range");
  await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
  await waitForTiles("full range");

  // KPIs show what the API (the marts) hold for the full range
  const full = await apiJson(`/api/summary?from=${range.min}&to=${range.max}`);
  const eventsAll = await kpi("events");
  assert.equal(Number(eventsAll.value), full.kpis.events);
  assert.match(eventsAll.text, /^\d{1,3}(,\d{3})*$/, "events KPI with thousands separators");
  assert.ok(full.kpis.events > 0);
  assert.equal(await page.inputValue("#date-from"), range.min);
  assert.equal(await page.inputValue("#date-to"), range.max);

  // traffic: one row per day, the peak hour marked
  const traffic = await apiJson(`/api/traffic?from=${range.min}&to=${range.max}`);
  assert.equal(Number(await page.getAttribute('[data-tile="traffic"]', "data-rows")), traffic.daily.length);
  assert.equal(await page.getAttribute('[data-tile="traffic"]', "data-peak-hour"), String(traffic.peak_hour_of_day));
  assert.equal(await page.locator('[data-tile="funnel"] tbody tr[data-step]').count(), 5);
  assert.ok(await page.locator('[data-tile="conversion"] tbody tr[data-product]').count() > 0);
  assert.ok(await page.locator('[data-tile="top"] tbody tr[data-product]').count() > 0);
  assert.ok(await page.locator('[data-tile="sessions"] tbody tr[data-channel]').count() > 0);
  for (const chartEl of await page.locator("[data-chart]").all()) {
    assert.ok(await chartEl.locator("svg").count() > 0, `chart ${await chartEl.getAttribute("data-chart")} drew an SVG`);
  }

  await settle();
  await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

  // Narrow the range to the last two days through the date inputs
  const day = (iso, n) => { const d = new Date(`${iso}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return d.toISOString().slice(0, 10); };
  const from = day(range.max, -1);
  const loaded = await page.getAttribute("body", "data-loaded");
  await page.fill("#date-from", from);
  await page.fill("#date-to", range.max);
  await page.click("#apply");
  await page.waitForFunction((prev) => document.body.dataset.loaded !== prev, loaded, { timeout: 30_000 });
  await waitForTiles("narrowed range");

  const narrow = await apiJson(`/api/summary?from=${from}&to=${range.max}`);
  const eventsNarrow = await kpi("events");
  assert.notEqual(eventsNarrow.value, eventsAll.value, "the events KPI changes with the date filter");
  assert.equal(Number(eventsNarrow.value), narrow.kpis.events);
  assert.ok(narrow.kpis.events < full.kpis.events);
  assert.equal(Number(await page.getAttribute('[data-tile="traffic"]', "data-rows")), 2, "two days of traffic");
  assert.equal(await page.getAttribute('[data-tile="top"]', "data-state"), "ready");
  assert.match(page.url(), new RegExp(`#from=${from}&to=${range.max}$`));
  await settle();
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-filtered.png"), fullPage: true });

  // The "All" preset restores the full range
  const loaded2 = await page.getAttribute("body", "data-loaded");
  await page.click('[data-preset="all"]');
  await page.waitForFunction((prev) => document.body.dataset.loaded !== prev, loaded2, { timeout: 30_000 });
  await waitForTiles("all preset");
  assert.equal((await kpi("events")).value, eventsAll.value);

  // The header says how fresh the data is: the newest event and the last dbt build.
  const freshness = await page.textContent("#freshness");
  assert.match(freshness, /^Newest event \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \(.+ ago\) · dbt built .+ ago$/, freshness);
  const latest = await apiJson("/api/recent-sessions");
  assert.equal(await page.locator('[data-tile="latest"] tbody tr[data-device-key]').count(), latest.rows.length);

  assert.deepEqual(pageErrors, [], "no JavaScript errors in the page");
  console.log(`screenshot: ${join(ARTIFACTS, "dashboard.png")}`);
  console.log(`screenshot (filtered ${from}..${range.max}): ${join(ARTIFACTS, "dashboard-filtered.png")}`);
});

// Every label a chart draws lies inside its chart, and no heading, KPI or table header is cut
// off, at the common desktop widths and a phone's.
test("no label is cut off from 1280 to 1920 px wide, nor on a phone", async () => {
  for (const width of [1280, 1440, 1920, 390]) {
    await page.setViewportSize({ width, height: width < 600 ? 844 : 1000 });
    await page.goto(baseUrl, { waitUntil: "domcontentloaded" });
    await waitForTiles(`${width} px`);
    await settle();
    const cut = await page.evaluate(() => {
      const problems = [];
      for (const chart of document.querySelectorAll("[data-chart]")) {
        const box = chart.getBoundingClientRect();
        for (const text of chart.querySelectorAll("svg text")) {
          const r = text.getBoundingClientRect();
          if (!text.textContent.trim() || r.width === 0) continue;
          if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1) {
            problems.push(`${chart.dataset.chart}: "${text.textContent}" at ${Math.round(r.left)}..${Math.round(r.right)} of ${Math.round(box.left)}..${Math.round(box.right)}`);
          }
          // Light text is drawn on a shape: where it runs past the shape it vanishes into the
          // white card ("an checkout 4," for "Began checkout 4,123"), so it must fit a shape.
          const fill = (text.getAttribute("fill") || getComputedStyle(text).fill || "").toLowerCase();
          const hex = fill.length === 4 ? fill.replace(/[0-9a-f]/g, (c) => c + c) : fill; // #fff -> #ffffff
          const rgb = hex.startsWith("#") && hex.length === 7
            ? [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
            : (fill.match(/\d+/g) || []).slice(0, 3).map(Number);
          const light = rgb.length === 3 && (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255 > 0.8;
          if (light && ![...chart.querySelectorAll("svg path")].filter((p) => (p.getAttribute("fill") || "none") !== "none").some((shape) => {
            const s = shape.getBoundingClientRect();
            return r.left >= s.left - 1 && r.right <= s.right + 1 && r.top >= s.top - 1 && r.bottom <= s.bottom + 1;
          })) {
            problems.push(`${chart.dataset.chart}: light label "${text.textContent}" runs past the shape it is drawn on`);
          }
        }
      }
      for (const el of document.querySelectorAll("h1, h2, h3, .kpi-value, .card-head .muted, th, .toggle button, .presets button")) {
        if (el.closest(".scroll")) continue; // tables that scroll sideways on narrow screens
        if (el.scrollWidth > el.clientWidth + 1) problems.push(`${el.tagName.toLowerCase()} "${el.textContent.trim()}" is cut (${el.scrollWidth} > ${el.clientWidth})`);
      }
      return problems;
    });
    assert.deepEqual(cut, [], `${width} px: labels cut off`);
    await page.screenshot({ path: join(ARTIFACTS, `dashboard-${width}.png`), fullPage: true });
  }
  assert.deepEqual(pageErrors, [], "no JavaScript errors in the page");
});
