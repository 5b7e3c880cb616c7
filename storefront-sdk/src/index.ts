/**
 * @clickstream/storefront-sdk: storefront e-commerce events to the clickstream collector.
 *
 * Use the module-level functions (`init`, `page`, `track`, …) for one tracker per page, or
 * `new Client(options)` for several.
 */
import { Client, type PurchaseLine } from './client';
import { LIBRARY } from './context';
import type { EventType, Options, Order, Product, TrackProps } from './types';

export { Client, LIBRARY };
export type { PurchaseLine };
export type * from './types';

let client: Client | undefined;

function current(): Client | undefined {
  if (!client && typeof console !== 'undefined') console.warn('clickstream: call init() first');
  return client;
}

/** Creates the page's tracker (replacing an earlier one) and returns it. */
export function init(options: Options): Client {
  client?.destroy();
  client = new Client(options);
  return client;
}

/** The tracker made by `init()`, if any. */
export const instance = (): Client | undefined => client;

export const page = (props?: Omit<TrackProps, 'event_name'>): string | undefined => current()?.page(props);
export const track = (type: EventType, props?: TrackProps): string | undefined => current()?.track(type, props);
export const productView = (product: Product, props?: TrackProps): string | undefined =>
  current()?.productView(product, props);
export const addToCart = (product: Product, props?: TrackProps): string | undefined =>
  current()?.addToCart(product, props);
export const removeFromCart = (product: Product, props?: TrackProps): string | undefined =>
  current()?.removeFromCart(product, props);
export const beginCheckout = (props?: TrackProps): string | undefined => current()?.beginCheckout(props);
export const search = (query: string, props?: TrackProps): string | undefined => current()?.search(query, props);
export const purchase = (order: Order & { order_id: string; lines?: PurchaseLine[] }, props?: TrackProps): string[] =>
  current()?.purchase(order, props) ?? [];
export const identify = (userId: string): void => current()?.identify(userId);
export const reset = (): void => current()?.reset();
export const setConsent = (granted: boolean): void => current()?.setConsent(granted);
export const flush = (): Promise<void> => current()?.flush() ?? Promise.resolve();
