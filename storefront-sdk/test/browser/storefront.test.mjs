// The real browser test: headless Chromium clicks through the demo storefront, which uses the
// built SDK (dist/clickstream.min.js) against the real collector; then the test finds every event
// id the page generated in the collector's spool, including those sent on page hide.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { SDK_ROOT, chromiumPath, freePort, startCollector, startStaticServer } from '../helpers/servers.mjs';
import { readStream } from '../helpers/spool.mjs';

const WRITE_KEY = 'sdk-browser-test-key';
const ARTIFACTS = join(SDK_ROOT, 'test-artifacts');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 100 ms until it returns a truthy value or `ms` pass; returns the last value. */
async function waitFor(fn, ms) {
  const deadline = Date.now() + ms;
  let value = await fn();
  while (!value && Date.now() < deadline) {
    await sleep(100);
    value = await fn();
  }
  return value;
}

/** Spooled events by event_id once all `ids` are there (waits at most `ms`). */
async function spooled(spoolDir, ids, ms = 10_000) {
  let byId = new Map();
  await waitFor(() => {
    byId = new Map(readStream(spoolDir, 'events').map((e) => [e.event_id, e]));
    return ids.every((id) => byId.has(id));
  }, ms);
  return byId;
}

describe('storefront in headless Chromium against the real collector', { timeout: 120_000 }, () => {
  let site;
  let collector;
  let browser;

  before(async () => {
    assert.ok(existsSync(join(SDK_ROOT, 'dist/clickstream.min.js')), 'run npm run build first');
    assert.ok(existsSync(chromiumPath()), `Chromium missing at ${chromiumPath()}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    site = await startStaticServer();
    collector = await startCollector({ writeKey: WRITE_KEY, corsOrigin: site.origin });
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync',
      ],
      timeout: 30_000,
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await collector?.stop();
    await site?.close();
  });

  it('delivers view → cart → purchase, including the events sent on page hide', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const query = new URLSearchParams({
      endpoint: collector.endpoint, key: WRITE_KEY, batch: '6', flush: '60000',
      utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'spring',
    });
    await page.goto(`${site.origin}/?${query}`);
    const card = (id) => page.locator(`.card[data-product-id="${id}"]`);

    await card('p-100').locator('.view').click();
    await card('p-100').locator('.add').click();
    await card('p-200').locator('.add').click();
    await card('p-200').locator('.add').click();
    await page.locator('#search').click(); // the 6th event: the first batch goes out
    const firstSix = await page.evaluate(() => window.__cs.ids.slice());
    assert.equal(firstSix.length, 6);
    assert.ok(
      await waitFor(() => page.evaluate((n) => window.__cs.accepted.length >= n, 6), 10_000),
      'the first batch was acknowledged',
    );

    await card('p-100').locator('.remove').click();
    await card('p-100').locator('.add').click();
    await page.locator('#sign-in').click();
    await page.locator('#checkout').click();
    await page.locator('#purchase').click();
    await page.screenshot({ path: join(ARTIFACTS, 'storefront.png'), fullPage: true });

    const state = await page.evaluate(() => ({
      ids: window.__cs.ids,
      types: window.__cs.types,
      accepted: window.__cs.accepted,
      queued: window.clickstream.instance().queuedEventIds(),
      stored: Object.keys(localStorage)
        .filter((k) => k.startsWith('cs_q_'))
        .flatMap((k) => JSON.parse(localStorage.getItem(k)).e.map((e) => e.event_id)),
      anonymousId: window.clickstream.instance().getAnonymousId(),
      sessionId: window.clickstream.instance().getSessionId(),
    }));
    assert.equal(state.ids.length, 11, 'page_view, product_view, 3 add_to_cart, search, remove_from_cart, begin_checkout, 2 purchase lines');
    assert.equal(new Set(state.ids).size, state.ids.length, 'event ids are unique');
    const pending = state.ids.filter((id) => !state.accepted.includes(id));
    assert.deepEqual(pending, state.ids.slice(6), 'the last five events wait for the timer (60 s) or page hide');
    assert.deepEqual(state.queued, pending);
    assert.deepEqual(state.stored, pending, 'the unsent queue is persisted in localStorage');
    assert.deepEqual(errors, []);

    // Closing the tab fires pagehide: the SDK hands the queue to fetch(keepalive).
    await page.close();
    await context.close();
    const byId = await spooled(collector.spoolDir, state.ids);
    const missing = state.ids.filter((id) => !byId.has(id));
    assert.deepEqual(missing, [], `events missing from the spool (page-hide ones: ${pending.join(', ')})`);

    const events = state.ids.map((id) => byId.get(id));
    for (const e of events) {
      assert.equal(e.event_type, state.types[e.event_id]);
      assert.equal(e.anonymous_id, state.anonymousId);
      assert.equal(e.session_id, state.sessionId);
      assert.equal(e.source_id, 'storefront-sdk-test');
      assert.equal(e.library_name, '@clickstream/storefront-sdk');
      assert.equal(e.platform, 'web');
      assert.equal(e.app_name, 'demo-storefront');
      assert.equal(e.utm_source, 'newsletter');
      assert.equal(e.utm_campaign, 'spring');
      assert.equal(e.page_path, '/');
      assert.equal(e.event_id_generated, false);
      assert.ok(e.locale && e.screen_width > 0);
    }
    // Signed in before begin_checkout: the last three events carry the user id.
    assert.deepEqual(events.map((e) => e.user_id ?? null), [...Array(8).fill(null), 'user-42', 'user-42', 'user-42']);
    const purchases = events.filter((e) => e.event_type === 'purchase');
    assert.equal(purchases.length, 2);
    assert.equal(purchases[0].order_id, purchases[1].order_id);
    assert.deepEqual(
      purchases.map((e) => [e.product_id, Number(e.revenue), e.order_currency]).sort(),
      [['p-100', 199.99, 'EUR'], ['p-200', 49, 'EUR']],
    );
    assert.deepEqual(readStream(collector.spoolDir, 'failed'), [], 'no dead letters');
  });

  it('keeps unsent events in localStorage and resends them after a reload', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const params = (endpoint) => new URLSearchParams({ endpoint, key: WRITE_KEY, batch: '1', retry: '200' });
    await page.goto(`${site.origin}/?${params(dead)}`);
    await page.locator('.card[data-product-id="p-200"] .view').click();
    await page.locator('.card[data-product-id="p-200"] .add').click();
    assert.ok(
      await waitFor(() => page.evaluate(() => window.__cs.reports.filter((r) => r.status === 0).length >= 2), 10_000),
      'sends failed with network errors and are being retried',
    );
    const offline = await page.evaluate(() => ({ ids: window.__cs.ids, accepted: window.__cs.accepted }));
    assert.equal(offline.ids.length, 3);
    assert.deepEqual(offline.accepted, []);

    // "Reload" in the same tab, now with a reachable collector: the persisted queue goes out.
    await page.goto(`${site.origin}/?${params(collector.endpoint)}`);
    const fresh = await page.evaluate(() => window.__cs.ids);
    const all = [...offline.ids, ...fresh];
    assert.ok(
      await waitFor(() => page.evaluate((ids) => ids.every((id) => window.__cs.accepted.includes(id)), all), 10_000),
      'the reloaded page delivered the earlier events: ' + JSON.stringify(await page.evaluate(() => ({ r: window.__cs.reports, q: window.clickstream.instance().queuedEventIds(), ls: Object.keys(localStorage) }))) + JSON.stringify(all),
    );
    const byId = await spooled(collector.spoolDir, all);
    assert.deepEqual(all.filter((id) => !byId.has(id)), []);
    assert.equal(byId.get(offline.ids[2]).event_type, 'add_to_cart');
    assert.equal(byId.get(offline.ids[0]).session_id, byId.get(fresh[0]).session_id, 'same session across the reload');
    assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('cs_q_')).length), 0);
    assert.deepEqual(readStream(collector.spoolDir, 'failed'), [], 'no dead letters');
    await context.close();
  });
});
