// Client code written against the types generated from the OpenAPI document.
import createClient from 'openapi-fetch';
import type { components, paths } from './generated/schema';

type Batch = components['schemas']['Batch'];

export async function sendBatch(endpoint: string, writeKey: string) {
  const client = createClient<paths>({ baseUrl: endpoint, headers: { 'X-Write-Key': writeKey } });
  const body: Batch = {
    sent_at: new Date().toISOString(),
    events: [
      { event_type: 'page_view', anonymous_id: 'anon-1', event_id: crypto.randomUUID(), page: { url: 'https://shop.example/' } },
      {
        event_type: 'purchase',
        user_id: 'customer-1',
        event_id: crypto.randomUUID(),
        product: { product_id: 'p-1', price: '19.99', currency: 'EUR', quantity: 1 },
        order: { order_id: 'o-1', revenue: '19.99', currency: 'EUR' },
      },
    ],
  };
  const { data, error, response } = await client.POST('/v1/events', { body });
  return { status: response.status, data: data as components['schemas']['IngestResponse'], error };
}
