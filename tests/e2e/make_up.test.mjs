// `make up`, as a newcomer uses it: the local twin running (scripts/up.py, short schedule), a
// shopper clicking through the demo storefront in headless Chromium, and that shopper's own
// session appearing in the dashboard's "Latest sessions" within two minutes of the clicks.
// Then Ctrl-C (SIGINT) stops everything cleanly, and a second start continues from the same
// state: the session is still there.
//
// Run by tests/e2e/make-up-test.sh (part of `make test`), which builds what it needs.
// Env: CLICKSTREAM_UP_BIN_DIR (the binaries), CHROMIUM_PATH (default /usr/bin/chromium).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(REPO, "dashboard", "package.json"))("playwright-core");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HOME = mkdtempSync(join(tmpdir(), "clickstream-up-"));
const ARRIVAL_LIMIT_MS = 120_000;

const freePort = () => new Promise((res, rej) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => res(port)); });
  s.on("error", rej);
});

const children = [];
let browser;
after(async () => {
  await browser?.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

function startUp(ports) {
  const child = spawn(join(REPO, ".venv", "bin", "python"), [join(REPO, "scripts", "up.py")], {
    cwd: REPO,
    env: {
      ...process.env, CLICKSTREAM_HOME: HOME, CLICKSTREAM_UP_INTERVAL_SECONDS: "15", CLICKSTREAM_UP_RATE: "0.2",
      CLICKSTREAM_LISTEN: `127.0.0.1:${ports.collector}`, CLICKSTREAM_DASHBOARD_LISTEN: `127.0.0.1:${ports.dashboard}`,
      CLICKSTREAM_STOREFRONT_LISTEN: `127.0.0.1:${ports.storefront}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.output = "";
  child.stdout.on("data", (d) => { child.output += d; });
  child.stderr.on("data", (d) => { child.output += d; });
  children.push(child);
  return child;
}

async function waitFor(what, check, ms, child) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`make up exited (${child.exitCode}) while waiting for ${what}:\n${child.output}`);
    try { if (await check()) return; } catch (_) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms / 1000} s\n${child?.output ?? ""}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const ok = async (url) => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

async function stopUp(child) {
  child.kill("SIGINT");
  const code = await new Promise((res) => (child.exitCode !== null ? res(child.exitCode) : child.on("exit", res)));
  assert.equal(code, 0, `make up stops cleanly on Ctrl-C:\n${child.output}`);
  assert.match(child.output, /stopped; the state is kept in/);
}

test("a shopper's clicks in the demo shop reach the dashboard within two minutes; Ctrl-C and a restart keep them", async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  const ports = { collector: await freePort(), dashboard: await freePort(), storefront: await freePort() };
  const up = startUp(ports);
  const dashboardUrl = `http://127.0.0.1:${ports.dashboard}/`;
  await waitFor("the storefront and dashboard", async () => await ok(`http://127.0.0.1:${ports.storefront}/demo/`) && await ok(`${dashboardUrl}healthz`), 60_000, up);

  browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  // A shopper's browser, not a headless one: the collector rightly flags HeadlessChrome as a
  // bot, and bots are left out of the marts.
  const major = (await browser.version()).split(".")[0];
  const shop = await browser.newPage({
    userAgent: `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`,
  });
  await shop.goto(`http://127.0.0.1:${ports.storefront}/`, { waitUntil: "load" }); // redirects to the demo shop
  await shop.click('[data-product-id="p-100"] .view');
  await shop.click('[data-product-id="p-100"] .add');
  await shop.click('[data-product-id="p-200"] .view');
  await shop.click("#checkout");
  await shop.click("#purchase");
  await shop.evaluate(() => window.clickstream.flush());
  const clickedAt = Date.now();
  const anonymousId = await shop.evaluate(() => window.clickstream.instance().getAnonymousId());
  const sent = await shop.evaluate(() => window.__cs.ids.length);
  await waitFor("the collector accepting the shop's events", async () =>
    (await shop.evaluate(() => window.__cs.accepted.length)) >= sent, 30_000, up);

  const board = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await board.goto(`${dashboardUrl}?refresh=3`, { waitUntil: "domcontentloaded" });
  const row = `[data-tile="latest"] tr[data-device-key="${anonymousId}"]`;
  await waitFor(`the shopper's session (device ${anonymousId}) on the dashboard`,
    async () => (await board.locator(row).count()) > 0, ARRIVAL_LIMIT_MS - (Date.now() - clickedAt), up);
  const seconds = (Date.now() - clickedAt) / 1000;
  console.log(`the shopper's session reached the dashboard ${seconds.toFixed(1)} s after the clicks`);
  assert.ok(seconds * 1000 <= ARRIVAL_LIMIT_MS);
  const cells = await board.locator(`${row} td`).allTextContents();
  assert.equal(Number(cells[4]), sent, `all ${sent} events of the session are counted: ${cells.join(" | ")}`);
  assert.equal(cells[5], "Purchased");
  assert.match(await board.textContent("#freshness"), /^Newest event .+ · dbt built .+ ago$/);

  await stopUp(up);
  const again = startUp(ports);
  await waitFor("the dashboard after a restart", async () => await ok(`${dashboardUrl}healthz`), 60_000, again);
  await board.goto(`${dashboardUrl}?refresh=0`, { waitUntil: "domcontentloaded" });
  await waitFor("the session after the restart", async () => (await board.locator(row).count()) > 0, 30_000, again);
  await stopUp(again);
});
