/** Event types the collector accepts. */
export type EventType =
  | 'page_view'
  | 'product_view'
  | 'add_to_cart'
  | 'remove_from_cart'
  | 'begin_checkout'
  | 'purchase'
  | 'search'
  | 'custom';

/** An amount of money: a number or a decimal string such as `"19.99"` (at most 9 decimals, never negative). */
export type Money = number | string;

/** The product an event is about. */
export interface Product {
  product_id: string;
  category_id?: string;
  /** Dotted category path, e.g. `electronics.smartphone`. */
  category_code?: string;
  brand?: string;
  /** Unit price. */
  price?: Money;
  /** ISO 4217 code, three upper-case letters (e.g. `EUR`). */
  currency?: string;
  /** Integer, 1..100000. */
  quantity?: number;
}

/** The order of a checkout or purchase. */
export interface Order {
  order_id?: string;
  /** Revenue of the order, or of this order line when a purchase is sent line by line. */
  revenue?: Money;
  currency?: string;
}

export interface PageInfo {
  url?: string;
  path?: string;
  referrer?: string;
  title?: string;
}

export interface Campaign {
  source?: string;
  medium?: string;
  name?: string;
  term?: string;
  content?: string;
}

export interface NameVersion {
  name?: string;
  version?: string;
}

export interface Context {
  platform?: 'web' | 'ios' | 'android' | 'server';
  app?: NameVersion;
  locale?: string;
  screen?: { width?: number; height?: number };
  library?: NameVersion;
  campaign?: Campaign;
  user_agent?: string;
}

/** Free-form properties: a JSON object of at most 16 KB and 5 levels. */
export type Properties = Record<string, unknown>;

/** What `track()` accepts besides the event type. */
export interface TrackProps {
  /** Required for `custom` events. */
  event_name?: string;
  product?: Product;
  order?: Order;
  search?: { query: string };
  properties?: Properties;
  /** Overrides of the page fields taken from `location` and `document`. */
  page?: PageInfo;
}

/** One event exactly as it goes over the wire. */
export interface WireEvent {
  event_id: string;
  event_type: EventType;
  event_name?: string;
  event_time: string;
  anonymous_id?: string;
  user_id?: string;
  session_id?: string;
  page?: PageInfo;
  product?: Product;
  order?: Order;
  search?: { query: string };
  context?: Context;
  properties?: Properties;
}

/** Where the anonymous id, user id and session live. */
export type Persistence = 'localStorage' | 'cookie' | 'memory';

export interface Options {
  /** The source's write key (sent as the `X-Write-Key` header). */
  writeKey: string;
  /** The collector's base URL, e.g. `https://collect.shop.example`. */
  endpoint: string;
  /** Where ids live: `localStorage` (default; falls back to `cookie`, then `memory`), `cookie`, or `memory`. */
  persistence?: Persistence;
  /** Cookie domain for `persistence: 'cookie'`, e.g. `.shop.example` to share ids across subdomains. */
  cookieDomain?: string;
  /** Cookie lifetime in days (default 365). */
  cookieMaxAgeDays?: number;
  /** Prefix of every storage key and cookie name (default `cs_`). */
  storagePrefix?: string;
  /** Minutes of inactivity after which a new session starts (default 30). */
  sessionTimeoutMinutes?: number;
  /** Send as soon as this many events are queued (default 20, at most 500). */
  batchSize?: number;
  /** Send queued events at the latest this many milliseconds after the first one (default 5000). */
  flushIntervalMs?: number;
  /** Most events kept unsent; the oldest are dropped beyond it (default 1000). */
  maxQueueSize?: number;
  /** Keep unsent events in localStorage so that a reload resends them (default true; never with `persistence: 'memory'`). */
  persistQueue?: boolean;
  /** First retry delay in milliseconds; doubles per attempt, with jitter (default 1000). */
  retryBaseDelayMs?: number;
  /** Longest retry delay in milliseconds (default 60000). A longer `Retry-After` is still honoured, up to one hour. */
  retryMaxDelayMs?: number;
  /** Send nothing and store nothing when the browser asks not to be tracked (DNT or Global Privacy Control). Default false. */
  respectDoNotTrack?: boolean;
  /** Hold events in memory, store nothing and send nothing until `setConsent(true)`. Default false. */
  requireConsent?: boolean;
  /** Your app's name and version, sent as `context.app`. */
  app?: NameVersion;
  /** A fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
  /** Called after each delivery attempt and whenever events are dropped. */
  onReport?: (report: DeliveryReport) => void;
  /** Log problems to the console. */
  debug?: boolean;
}

/** The outcome of one request, or of dropping events. */
export interface DeliveryReport {
  /** HTTP status; 0 for network errors, -1 when events were dropped without a request. */
  status: number;
  /** How the events went: `fetch`, `keepalive` (page hide) or `beacon` (fallback). */
  via: 'fetch' | 'keepalive' | 'beacon' | 'none';
  /** Event ids the collector accepted (durably stored). */
  accepted: string[];
  /** Event ids the collector rejected, with the reason; never retried. */
  rejected: { event_id: string; field?: string; code?: string; message?: string }[];
  /** Event ids dropped without acceptance (4xx, queue overflow, invalid, consent denied). */
  dropped: string[];
  /** Event ids that will be retried. */
  retrying: string[];
  /** Milliseconds until the retry, when there is one. */
  retryInMs?: number;
}
