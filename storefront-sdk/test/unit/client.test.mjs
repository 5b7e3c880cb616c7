// Unit tests of the built ESM bundle (dist/index.mjs) in a fake browser environment.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import vm from 'node:vm';
import { gzipSync } from 'node:zlib';
import * as sdk from '../../dist/index.mjs';
import { fakeFetch, installDom, sleep, until } from '../helpers/fake-dom.mjs';

const { Client } = sdk;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

let dom;
const clients = [];
function client(options = {}) {
  const c = new Client({ writeKey: 'wk', endpoint: 'https://collect.example/', flushIntervalMs: 20, retryBaseDelayMs: 10, ...options });
  clients.push(c);
  return c;
}

beforeEach(() => {
  dom = installDom();
});
afterEach(() => {
  while (clients.length) clients.pop().destroy();
  sdk.instance()?.destroy();
  dom.restore();
});

describe('events', () => {
  it('carries ids, time, page, context and UTM fields, and goes out as a batch with sent_at', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, app: { name: 'shop', version: '2.1.0' } });
    const id = c.page();
    assert.match(id, UUID);
    await until(() => fetch.calls.length === 1);
    const { url, init, body } = fetch.calls[0];
    assert.equal(url, 'https://collect.example/v1/events');
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['X-Write-Key'], 'wk');
    assert.equal(init.credentials, 'omit');
    assert.ok(!Number.isNaN(Date.parse(body.sent_at)) && body.sent_at.endsWith('Z'));
    assert.equal(body.events.length, 1);
    const ev = body.events[0];
    assert.equal(ev.event_id, id);
    assert.equal(ev.event_type, 'page_view');
    assert.ok(Math.abs(Date.parse(ev.event_time) - Date.now()) < 5000);
    assert.match(ev.anonymous_id, UUID);
    assert.match(ev.session_id, UUID);
    assert.equal(ev.user_id, undefined);
    assert.deepEqual(ev.page, {
      url: 'https://shop.example/products/42?utm_source=ads&utm_medium=cpc&utm_campaign=spring&x=1',
      path: '/products/42',
      referrer: 'https://search.example/?q=phone',
      title: 'Phone X – Demo shop',
    });
    assert.deepEqual(ev.context, {
      platform: 'web',
      app: { name: 'shop', version: '2.1.0' },
      locale: 'de-DE',
      screen: { width: 1440, height: 900 },
      library: { name: '@clickstream/storefront-sdk', version: pkg.version },
      campaign: { source: 'ads', medium: 'cpc', name: 'spring' },
    });
    assert.deepEqual(sdk.LIBRARY, { name: pkg.name, version: pkg.version });
  });

  it('has e-commerce helpers that fill the fields the collector requires', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, batchSize: 100 });
    const product = { product_id: 'p1', category_code: 'electronics.smartphone', brand: 'acme', price: '19.99', currency: 'EUR', quantity: 3 };
    c.productView(product);
    c.addToCart(product);
    c.removeFromCart(product);
    c.beginCheckout({ order: { revenue: 59.97, currency: 'EUR' } });
    c.search('red shoes');
    c.track('custom', { event_name: 'newsletter_signup', properties: { list: 'weekly' } });
    const lines = c.purchase({
      order_id: 'o-1',
      currency: 'EUR',
      lines: [{ product }, { product: { product_id: 'p2', price: 0.1, quantity: 3 } }, { product: { product_id: 'p3' }, revenue: '5' }],
    });
    assert.equal(lines.length, 3);
    assert.equal(c.purchase({ order_id: 'o-2', revenue: '10.00', currency: 'USD' }).length, 1);
    await c.flush();
    const events = fetch.calls[0].body.events;
    assert.deepEqual(events.map((e) => e.event_type), [
      'product_view', 'add_to_cart', 'remove_from_cart', 'begin_checkout', 'search', 'custom', 'purchase', 'purchase', 'purchase', 'purchase',
    ]);
    assert.deepEqual(events[0].product, product);
    assert.deepEqual(events[4].search, { query: 'red shoes' });
    assert.equal(events[5].event_name, 'newsletter_signup');
    assert.deepEqual(events[5].properties, { list: 'weekly' });
    // One purchase event per order line, sharing the order id, each with its exact line revenue.
    assert.deepEqual(events.slice(6, 9).map((e) => e.order), [
      { order_id: 'o-1', revenue: '59.97', currency: 'EUR' },
      { order_id: 'o-1', revenue: '0.3', currency: 'EUR' },
      { order_id: 'o-1', revenue: '5', currency: 'EUR' },
    ]);
    assert.deepEqual(events.slice(6, 9).map((e) => e.event_id), lines);
    assert.deepEqual(events[9].order, { order_id: 'o-2', revenue: '10.00', currency: 'USD' });
    assert.equal(new Set(events.map((e) => e.event_id)).size, events.length);
  });

  it('drops events that miss required fields instead of sending them', async () => {
    const fetch = fakeFetch();
    const dropped = [];
    const c = client({ fetch, onReport: (r) => dropped.push(...r.dropped) });
    assert.equal(c.track('product_view', {}), undefined);
    assert.equal(c.track('search', { search: { query: '' } }), undefined);
    assert.equal(c.track('custom', {}), undefined);
    assert.equal(c.track('nonsense', {}), undefined);
    assert.deepEqual(c.purchase({ order_id: 'o' }), []);
    assert.deepEqual(c.purchase({ order_id: 'o', lines: [{ product: { product_id: 'no-price' } }] }), []);
    assert.equal(c.track('page_view', { properties: { blob: 'x'.repeat(40_000) } }), undefined);
    assert.equal(dropped.length, 6);
    await sleep(50);
    assert.equal(fetch.calls.length, 0);
    assert.deepEqual(c.queuedEventIds(), []);
  });
});

describe('ids and sessions', () => {
  it('persists the anonymous id in localStorage by default', () => {
    const a = client({ fetch: fakeFetch() });
    assert.equal(dom.local.getItem('cs_aid'), a.getAnonymousId());
    a.destroy();
    assert.equal(client({ fetch: fakeFetch() }).getAnonymousId(), a.getAnonymousId());
  });

  it('can keep ids in a first-party cookie instead, or only in memory', () => {
    const c = client({ fetch: fakeFetch(), persistence: 'cookie', storagePrefix: 'shop_' });
    assert.equal(dom.cookies.get('shop_aid'), c.getAnonymousId());
    assert.equal(dom.local.getItem('shop_aid'), null);
    assert.equal(client({ fetch: fakeFetch(), persistence: 'cookie', storagePrefix: 'shop_' }).getAnonymousId(), c.getAnonymousId());
    const m = client({ fetch: fakeFetch(), persistence: 'memory', storagePrefix: 'mem_' });
    m.track('page_view');
    assert.equal([...dom.cookies.keys()].filter((k) => k.startsWith('mem_')).length, 0);
    assert.equal([...Array(dom.local.length).keys()].map((i) => dom.local.key(i)).filter((k) => k.startsWith('mem_')).length, 0);
  });

  it('renews the session after 30 minutes of inactivity, and only then', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, batchSize: 1 });
    c.page();
    const first = c.getSessionId();
    c.page();
    assert.equal(c.getSessionId(), first);
    dom.local.setItem('cs_sid', `${first}|${Date.now() - 29 * 60_000}`);
    c.page();
    assert.equal(c.getSessionId(), first);
    dom.local.setItem('cs_sid', `${first}|${Date.now() - 31 * 60_000}`);
    c.page();
    const second = c.getSessionId();
    assert.match(second, UUID);
    assert.notEqual(second, first);
    await until(() => fetch.calls.length === 4);
    assert.deepEqual(fetch.calls.map((x) => x.body.events[0].session_id), [first, first, first, second]);
  });

  it('identify() adds the user id from then on; reset() forgets it and starts a new anonymous id', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, batchSize: 1 });
    c.page();
    c.identify('user-7');
    c.page();
    assert.equal(dom.local.getItem('cs_uid'), 'user-7');
    assert.equal(client({ fetch: fakeFetch() }).getUserId(), 'user-7');
    const anon = c.getAnonymousId();
    c.reset();
    c.page();
    await until(() => fetch.calls.length === 3);
    const evs = fetch.calls.map((x) => x.body.events[0]);
    assert.deepEqual(evs.map((e) => e.user_id), [undefined, 'user-7', undefined]);
    assert.equal(evs[1].anonymous_id, anon);
    assert.notEqual(evs[2].anonymous_id, anon);
    assert.equal(dom.local.getItem('cs_uid'), null);
  });
});

describe('batching', () => {
  it('sends when batchSize events are queued, else after flushIntervalMs', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, batchSize: 3, flushIntervalMs: 150 });
    c.page();
    c.page();
    await sleep(30);
    assert.equal(fetch.calls.length, 0);
    c.page();
    await until(() => fetch.calls.length === 1);
    assert.equal(fetch.calls[0].ids.length, 3);
    const started = Date.now();
    c.page();
    await until(() => fetch.calls.length === 2);
    assert.ok(Date.now() - started >= 120, 'the lone event waited for the interval');
  });

  it('keeps every request within 500 events and the body limit', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, batchSize: 10_000, maxQueueSize: 5000 });
    for (let i = 0; i < 700; i++) c.track('custom', { event_name: 'e', properties: { pad: 'x'.repeat(800) } });
    await until(() => fetch.calls.reduce((n, x) => n + x.ids.length, 0) === 700, 5000);
    for (const call of fetch.calls) {
      assert.ok(call.ids.length <= 500);
      assert.ok(call.bytes <= 500 * 1024, `${call.bytes} bytes`);
    }
    assert.ok(fetch.calls.length >= 2);
  });
});

describe('delivery', () => {
  it('retries 5xx and network errors with growing, jittered delays and the same event ids', async () => {
    const fetch = fakeFetch((_, n) => (n === 1 ? { status: 503 } : n === 2 ? 'network' : n === 3 ? { status: 500 } : { status: 200 }));
    const reports = [];
    const c = client({ fetch, retryBaseDelayMs: 40, onReport: (r) => reports.push(r) });
    const id = c.page();
    await until(() => fetch.calls.length === 4);
    assert.deepEqual(fetch.calls.map((x) => x.ids), [[id], [id], [id], [id]]);
    assert.deepEqual(reports.map((r) => r.status), [503, 0, 500, 200]);
    assert.deepEqual(reports.at(-1).accepted, [id]);
    const gaps = fetch.calls.slice(1).map((x, i) => x.at - fetch.calls[i].at);
    // Delays are in [exp/2, exp] with exp = 40, 80, 160 ms.
    assert.ok(gaps[0] >= 18 && gaps[1] >= 38 && gaps[2] >= 78, `gaps ${gaps}`);
    assert.ok(reports[2].retryInMs >= 80 && reports[2].retryInMs <= 160, `${reports[2].retryInMs}`);
    assert.deepEqual(c.queuedEventIds(), []);
  });

  it('honours Retry-After on 429', async () => {
    const fetch = fakeFetch((_, n) => (n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
    const c = client({ fetch });
    const id = c.page();
    await until(() => fetch.calls.length === 1);
    await c.flush(); // an explicit flush does not jump the server's Retry-After
    await sleep(500);
    assert.equal(fetch.calls.length, 1);
    await until(() => fetch.calls.length === 2, 3000);
    assert.ok(fetch.calls[1].at - fetch.calls[0].at >= 990);
    assert.deepEqual(fetch.calls[1].ids, [id]);
  });

  for (const status of [400, 401, 403, 415]) {
    it(`never retries a ${status}`, async () => {
      const fetch = fakeFetch(() => ({ status }));
      const reports = [];
      const c = client({ fetch, onReport: (r) => reports.push(r) });
      const id = c.page();
      await until(() => reports.length === 1);
      await sleep(100);
      assert.equal(fetch.calls.length, 1);
      assert.deepEqual(reports[0].dropped, [id]);
      assert.deepEqual(c.queuedEventIds(), []);
      assert.deepEqual(storedQueue(), []);
    });
  }

  it('reports events the collector rejected in a partial batch and does not resend them', async () => {
    const fetch = fakeFetch((call) => ({
      status: 200,
      body: { accepted: 1, event_ids: [call.ids[0], null], rejected: [{ index: 1, field: 'product.currency', code: 'currency', message: 'bad' }] },
    }));
    const reports = [];
    const c = client({ fetch, batchSize: 2, onReport: (r) => reports.push(r) });
    const ok = c.page();
    const bad = c.productView({ product_id: 'p', currency: 'eur' });
    await until(() => reports.length === 1);
    assert.deepEqual(reports[0].accepted, [ok]);
    assert.deepEqual(reports[0].rejected, [{ event_id: bad, field: 'product.currency', code: 'currency', message: 'bad' }]);
    await sleep(60);
    assert.equal(fetch.calls.length, 1);
  });

  it('splits a batch the collector finds too large (413)', async () => {
    const fetch = fakeFetch((call) => (call.ids.length > 2 ? { status: 413 } : { status: 200 }));
    const c = client({ fetch, batchSize: 8 });
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push(c.page());
    await until(() => c.queuedEventIds().length === 0);
    assert.deepEqual(fetch.calls.map((x) => x.ids.length), [8, 4, 2, 2, 2, 2]);
    assert.deepEqual(fetch.calls.slice(2).flatMap((x) => x.ids), ids);
  });

  it('bounds the offline queue, dropping the oldest, and sends when back online', async () => {
    dom.restore();
    dom = installDom({ navigator: { onLine: false } });
    const fetch = fakeFetch();
    const dropped = [];
    const c = client({ fetch, batchSize: 2, maxQueueSize: 3, onReport: (r) => dropped.push(...r.dropped) });
    const ids = [1, 2, 3, 4, 5].map(() => c.page());
    await sleep(50);
    assert.equal(fetch.calls.length, 0);
    assert.deepEqual(c.queuedEventIds(), ids.slice(2));
    assert.deepEqual(dropped, ids.slice(0, 2));
    navigator.onLine = true;
    dom.fire('online');
    await until(() => c.queuedEventIds().length === 0);
    assert.deepEqual(fetch.calls.flatMap((x) => x.ids), ids.slice(2));
  });

  it('persists unsent events so that the next page load resends them with the same ids', async () => {
    const failing = fakeFetch(() => 'network');
    const a = client({ fetch: failing, batchSize: 1 });
    const ids = [a.page(), a.addToCart({ product_id: 'p1' })];
    await until(() => failing.calls.length >= 2);
    a.destroy();
    assert.deepEqual(storedQueue(), ids);
    const working = fakeFetch();
    const b = client({ fetch: working, batchSize: 10 });
    await until(() => working.calls.length === 1);
    assert.deepEqual(working.calls[0].ids, ids);
    await until(() => b.queuedEventIds().length === 0);
    assert.equal([...iterate(dom.local)].filter(([k]) => k.startsWith('cs_q_')).length, 0);
  });

  it('adopts the queue another tab left behind, once it is stale', async () => {
    const old = { event_id: '11111111-1111-4111-8111-111111111111', event_type: 'page_view', event_time: new Date().toISOString(), anonymous_id: 'a' };
    dom.local.setItem('cs_q_othertab', JSON.stringify({ t: Date.now() - 10 * 60_000, e: [old] }));
    dom.local.setItem('cs_q_livetab', JSON.stringify({ t: Date.now(), e: [{ ...old, event_id: '22222222-2222-4222-8222-222222222222' }] }));
    const fetch = fakeFetch();
    client({ fetch });
    await until(() => fetch.calls.length === 1);
    assert.deepEqual(fetch.calls[0].ids, [old.event_id]);
    assert.equal(dom.local.getItem('cs_q_othertab'), null);
    assert.notEqual(dom.local.getItem('cs_q_livetab'), null);
  });
});

describe('page hide', () => {
  it('sends the queue with fetch keepalive as text/plain and takes it out of localStorage', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, flushIntervalMs: 60_000 });
    const ids = [c.page(), c.addToCart({ product_id: 'p1' })];
    assert.ok(storedQueue().length === 2);
    dom.hide();
    assert.equal(fetch.calls.length, 1, 'sent synchronously within the pagehide handler');
    const { init } = fetch.calls[0];
    assert.equal(init.keepalive, true);
    assert.equal(init.headers['Content-Type'], 'text/plain');
    assert.equal(init.headers['X-Write-Key'], 'wk');
    assert.deepEqual(fetch.calls[0].ids, ids);
    assert.deepEqual(storedQueue(), [], 'handed to the browser: a reload must not resend them');
    await until(() => c.queuedEventIds().length === 0);
  });

  it('stays within the 64 KiB keepalive budget and leaves the rest for the next page load', async () => {
    const fetch = fakeFetch(() => new Promise(() => {})); // the page is gone: no answers
    const c = client({ fetch, flushIntervalMs: 60_000, batchSize: 100 });
    const ids = [];
    for (let i = 0; i < 8; i++) ids.push(c.track('custom', { event_name: 'big', properties: { pad: 'x'.repeat(15_000) } }));
    dom.hide();
    const sent = fetch.calls.flatMap((x) => x.ids);
    assert.ok(fetch.calls.every((x) => x.init.keepalive));
    assert.ok(fetch.calls.reduce((n, x) => n + x.bytes, 0) <= 64_000);
    assert.ok(sent.length >= 3 && sent.length < 8, `${sent.length} sent`);
    assert.deepEqual(storedQueue(), ids.filter((id) => !sent.includes(id)));
  });

  it('keeps a copy of what it sends on page hide while sends are failing', async () => {
    const fetch = fakeFetch((_, n) => (n === 1 ? 'network' : new Promise(() => {})));
    const c = client({ fetch, retryBaseDelayMs: 60_000 });
    const id = c.page();
    await until(() => fetch.calls.length === 1);
    await sleep(5);
    dom.hide();
    assert.equal(fetch.calls.length, 2);
    assert.equal(fetch.calls[1].init.keepalive, true);
    assert.deepEqual(storedQueue(), [id]);
  });

  it('falls back to sendBeacon without fetch keepalive, keeping the events for the next load', () => {
    const beacons = [];
    navigator.sendBeacon = (url, blob) => (beacons.push({ url, blob }), true);
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
    delete globalThis.fetch;
    try {
      const c = client({ flushIntervalMs: 60_000 });
      const id = c.page();
      dom.hide();
      assert.equal(beacons.length, 1);
      assert.equal(beacons[0].url, 'https://collect.example/v1/events');
      assert.equal(beacons[0].blob.type, 'text/plain');
      assert.deepEqual(storedQueue(), [id]);
    } finally {
      Object.defineProperty(globalThis, 'fetch', saved);
    }
  });
});

describe('privacy', () => {
  it('with respectDoNotTrack, tracks and stores nothing when DNT or GPC is on', async () => {
    for (const navigatorProps of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
      dom.restore();
      dom = installDom({ navigator: navigatorProps });
      const fetch = fakeFetch();
      const c = client({ fetch, respectDoNotTrack: true });
      assert.equal(c.page(), undefined);
      c.setConsent(true);
      assert.equal(c.page(), undefined);
      await sleep(40);
      assert.equal(fetch.calls.length, 0);
      assert.equal(dom.local.length, 0);
      assert.equal(dom.cookies.size, 0);
      // Without the option, DNT is not applied.
      assert.match(client({ fetch }).page(), UUID);
    }
  });

  it('with requireConsent, holds events in memory until consent, then sends them', async () => {
    const fetch = fakeFetch();
    dom.local.setItem('cs_aid', 'returning-visitor');
    const c = client({ fetch, requireConsent: true });
    const id = c.page();
    assert.match(id, UUID);
    await sleep(50);
    assert.equal(fetch.calls.length, 0);
    assert.equal(dom.local.getItem('cs_sid'), null);
    assert.deepEqual(storedQueue(), []);
    c.setConsent(true);
    await until(() => fetch.calls.length === 1);
    assert.deepEqual(fetch.calls[0].ids, [id]);
    assert.equal(fetch.calls[0].body.events[0].anonymous_id, 'returning-visitor');
  });

  it('withdrawn consent drops held events and clears stored ids', async () => {
    const fetch = fakeFetch();
    const c = client({ fetch, flushIntervalMs: 60_000 });
    c.page();
    assert.notEqual(dom.local.getItem('cs_aid'), null);
    c.setConsent(false);
    assert.equal(dom.local.getItem('cs_aid'), null);
    assert.equal(dom.local.getItem('cs_sid'), null);
    assert.deepEqual(storedQueue(), []);
    assert.equal(c.page(), undefined);
    dom.hide();
    assert.equal(fetch.calls.length, 0);
  });
});

describe('packaging', () => {
  it('the module-level API drives one tracker', async () => {
    const fetch = fakeFetch();
    sdk.init({ writeKey: 'wk', endpoint: 'https://c.example', fetch, batchSize: 1 });
    const id = sdk.track('search', { search: { query: 'kettle' } });
    sdk.identify('u1');
    sdk.page();
    await sdk.flush();
    await until(() => fetch.calls.length === 2);
    assert.equal(fetch.calls[0].ids[0], id);
    assert.equal(fetch.calls[1].body.events[0].user_id, 'u1');
  });

  it('the IIFE bundle defines the global `clickstream`', () => {
    const code = readFileSync(new URL('../../dist/clickstream.min.js', import.meta.url), 'utf8');
    const sandbox = {};
    vm.runInNewContext(code, sandbox);
    for (const name of ['init', 'page', 'track', 'identify', 'productView', 'addToCart', 'removeFromCart', 'beginCheckout', 'purchase', 'search', 'flush', 'setConsent', 'reset', 'Client']) {
      assert.equal(typeof sandbox.clickstream[name], 'function', name);
    }
  });

  it('requires a write key and an endpoint', () => {
    assert.throws(() => new Client({ endpoint: 'https://c.example' }), /writeKey/);
    assert.throws(() => new Client({ writeKey: 'k' }), /endpoint/);
  });

  it('has no runtime dependencies and stays small', () => {
    assert.equal(pkg.dependencies, undefined);
    const code = readFileSync(new URL('../../dist/clickstream.min.js', import.meta.url));
    const gz = gzipSize(code);
    assert.ok(gz < 8 * 1024, `${gz} bytes gzipped`);
  });
});

function* iterate(storage) {
  for (let i = 0; i < storage.length; i++) {
    const k = storage.key(i);
    yield [k, storage.getItem(k)];
  }
}

function storedQueue() {
  return [...iterate(dom.local)].filter(([k]) => k.startsWith('cs_q_')).flatMap(([, v]) => JSON.parse(v).e.map((e) => e.event_id));
}

function gzipSize(buf) {
  return gzipSync(buf, { level: 9 }).length;
}
