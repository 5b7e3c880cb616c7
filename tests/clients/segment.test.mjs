// Segment's own Node library (@segment/analytics-node, from npm) pointed at the collector's
// Segment-compatible /v1/batch: every call it makes must land in the spool, mapped onto the
// event contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Analytics } from '@segment/analytics-node';
import { startCollector } from '../../storefront-sdk/test/helpers/servers.mjs';
import { readStream } from '../../storefront-sdk/test/helpers/spool.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('analytics-node sends track, page, screen and identify calls the collector stores', async () => {
  const collector = await startCollector({ writeKey: 'segment-key', corsOrigin: 'http://127.0.0.1' });
  try {
    const analytics = new Analytics({ writeKey: 'segment-key', host: collector.endpoint, flushAt: 4, flushInterval: 200, maxRetries: 2 });
    const failures = [];
    analytics.on('error', (error) => failures.push(error));
    analytics.page({ anonymousId: 'anon-42', name: 'Home', properties: { url: 'https://shop.example/', path: '/' } });
    analytics.track({ anonymousId: 'anon-42', event: 'Product Viewed', properties: { product_id: 'p-1', price: 19.99, currency: 'EUR', category: 'Electronics/Phones', brand: 'acme' } });
    analytics.track({ anonymousId: 'anon-42', event: 'Product Added', properties: { product_id: 'p-1', price: 19.99, quantity: 2, currency: 'EUR' } });
    analytics.identify({ anonymousId: 'anon-42', userId: 'customer-42', traits: { plan: 'gold' } });
    analytics.track({ userId: 'customer-42', event: 'Checkout Started', properties: { order_id: 'o-7', value: 49.98, currency: 'EUR' } });
    analytics.track({
      userId: 'customer-42',
      event: 'Order Completed',
      properties: { order_id: 'o-7', total: 49.98, currency: 'EUR', products: [{ product_id: 'p-1', price: 19.99, quantity: 2 }, { product_id: 'p-2', price: 10, quantity: 1 }] },
    });
    analytics.track({ userId: 'customer-42', event: 'Products Searched', properties: { query: 'usb cable' } });
    analytics.screen({ userId: 'customer-42', name: 'Order confirmation' });
    analytics.track({ userId: 'customer-42', event: 'Newsletter Signed Up', properties: { list: 'weekly' } });
    await analytics.closeAndFlush({ timeout: 10_000 });
    assert.deepEqual(failures, []);

    let events = [];
    for (let i = 0; i < 50 && events.length < 10; i++) {
      events = readStream(collector.spoolDir, 'events');
      if (events.length < 10) await sleep(100);
    }
    const byType = {};
    for (const event of events) byType[event.event_type] = (byType[event.event_type] ?? 0) + 1;
    assert.deepEqual(byType, { page_view: 2, product_view: 1, add_to_cart: 1, custom: 2, begin_checkout: 1, purchase: 2, search: 1 });
    const purchases = events.filter((e) => e.event_type === 'purchase');
    assert.deepEqual(purchases.map((e) => [e.order_id, e.product_id, Number(e.revenue)]).sort(), [['o-7', 'p-1', 39.98], ['o-7', 'p-2', 10]]);
    const identify = events.find((e) => e.event_name === 'identify');
    assert.equal(identify.anonymous_id, 'anon-42');
    assert.equal(identify.user_id, 'customer-42');
    const viewed = events.find((e) => e.event_type === 'product_view');
    assert.equal(viewed.category_code, 'electronics.phones');
    assert.equal(viewed.library_name, '@segment/analytics-node');
    assert.equal(new Set(events.map((e) => e.event_id)).size, events.length, 'every message has its own id');
    assert.deepEqual(readStream(collector.spoolDir, 'failed'), []);
  } finally {
    await collector.stop();
  }
});
