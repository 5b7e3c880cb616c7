import { contextFor, pageInfo } from './context';
import { idStore, memoryStore, webStorage, type Store } from './storage';
import type {
  DeliveryReport,
  EventType,
  Money,
  Options,
  Order,
  Product,
  TrackProps,
  WireEvent,
} from './types';
import { G, byteLength, compact, iso, multiplyMoney, now, uuid } from './util';

/** Collector limits (with headroom) and Chromium's keepalive quota. */
const MAX_BATCH_EVENTS = 500;
const MAX_BODY_BYTES = 480_000;
const MAX_EVENT_BYTES = 32_768;
/** Browsers allow at most 64 KiB of keepalive request bodies in flight per page. */
const KEEPALIVE_BUDGET = 64_000;
/** Queues of other tabs untouched this long are adopted by the next page load. */
const STALE_QUEUE_MS = 5 * 60_000;
const MAX_RETRY_AFTER_MS = 3_600_000;

const EVENT_TYPES: EventType[] = [
  'page_view',
  'product_view',
  'add_to_cart',
  'remove_from_cart',
  'begin_checkout',
  'purchase',
  'search',
  'custom',
];

/** One line of a multi-line purchase: its product and, unless `price * quantity`, its revenue. */
export interface PurchaseLine {
  product: Product;
  revenue?: Money;
}

type Via = DeliveryReport['via'];
type State = 'on' | 'pending' | 'denied' | 'dnt';

/** Why `event` would be rejected by the collector's required-field rules, if it would. */
function problemOf(ev: WireEvent): string | undefined {
  const t = ev.event_type;
  if (EVENT_TYPES.indexOf(t) < 0) return `unknown event type ${String(t)}`;
  if ((t === 'product_view' || t === 'add_to_cart' || t === 'remove_from_cart') && !ev.product?.product_id)
    return `${t} needs product.product_id`;
  if (t === 'purchase' && (!ev.order?.order_id || ev.order.revenue == null))
    return 'purchase needs order.order_id and order.revenue';
  if (t === 'search' && !ev.search?.query) return 'search needs search.query';
  if (t === 'custom' && !ev.event_name) return 'custom events need event_name';
  if (byteLength(JSON.stringify(ev)) > MAX_EVENT_BYTES) return `the event exceeds ${MAX_EVENT_BYTES} bytes`;
  return undefined;
}

/** Milliseconds asked for by a `Retry-After` header (seconds or an HTTP date). */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const s = Number(header);
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(header) - now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** A tracker bound to one write key and collector. */
export class Client {
  private readonly o_: Options;
  private readonly url_: string;
  private readonly batchSize_: number;
  private readonly p_: string;
  private state_: State;
  private ids_: Store;
  private qs_: Storage | undefined;
  private qKey_ = '';
  private anon_ = '';
  private user_: string | undefined;
  private queue_: WireEvent[] = [];
  /** Event ids in a request now, and those of them sent with keepalive. */
  private inflight_ = new Set<string>();
  private kaInflight_ = new Set<string>();
  private kaBytes_ = 0;
  /** Ids whose keepalive request outlives the page: not persisted again, or a reload would resend them. */
  private handedOff_ = new Set<string>();
  /** Ids already given to sendBeacon during this page hide. */
  private beaconed_ = new Set<string>();
  private sending_: Promise<void> | undefined;
  private cap_: number;
  private attempt_ = 0;
  private retryAt_ = 0;
  private serverAsked_ = false;
  private timer_: ReturnType<typeof setTimeout> | undefined;
  private timerAt_ = 0;
  private off_: (() => void)[] = [];

  constructor(options: Options) {
    if (!options || !options.writeKey) throw new TypeError('clickstream: writeKey is required');
    if (!options.endpoint) throw new TypeError('clickstream: endpoint is required');
    this.o_ = options;
    this.url_ = `${options.endpoint.replace(/\/+$/, '')}/v1/events`;
    this.batchSize_ = Math.min(Math.max(1, Math.floor(options.batchSize ?? 20)), MAX_BATCH_EVENTS);
    this.cap_ = this.batchSize_;
    this.p_ = options.storagePrefix ?? 'cs_';
    const nav = G.navigator;
    const dnt =
      options.respectDoNotTrack &&
      (nav?.doNotTrack === '1' || nav?.doNotTrack === 'yes' || G.doNotTrack === '1' || nav?.globalPrivacyControl === true);
    this.state_ = dnt ? 'dnt' : options.requireConsent ? 'pending' : 'on';
    this.ids_ = memoryStore();
    this.anon_ = uuid();
    if (this.state_ === 'on') this.activate_();
    this.listen_();
  }

  // ---- public API -------------------------------------------------------------------------

  /** Records a `page_view` of the current page. Returns the event id. */
  page(props: Omit<TrackProps, 'event_name'> = {}): string | undefined {
    return this.track('page_view', props);
  }

  /** Records an event of `type` and returns its `event_id`, or undefined when it was not recorded. */
  track(type: EventType, props: TrackProps = {}): string | undefined {
    const ev = this.build_(type, props, now());
    return ev && this.enqueue_([ev])[0];
  }

  productView(product: Product, props: TrackProps = {}): string | undefined {
    return this.track('product_view', { ...props, product });
  }

  addToCart(product: Product, props: TrackProps = {}): string | undefined {
    return this.track('add_to_cart', { ...props, product });
  }

  removeFromCart(product: Product, props: TrackProps = {}): string | undefined {
    return this.track('remove_from_cart', { ...props, product });
  }

  beginCheckout(props: TrackProps = {}): string | undefined {
    return this.track('begin_checkout', props);
  }

  search(query: string, props: TrackProps = {}): string | undefined {
    return this.track('search', { ...props, search: { query } });
  }

  /**
   * Records a purchase. Without `lines`, one event carrying `order.revenue`. With `lines`, one
   * event per line sharing `order_id`, each with the line's revenue (its `revenue`, else
   * `price * quantity`), so that revenue adds up. Returns the event ids (empty when not recorded).
   */
  purchase(order: Order & { order_id: string; lines?: PurchaseLine[] }, props: TrackProps = {}): string[] {
    const { lines, ...head } = order;
    const t = now();
    const events: WireEvent[] = [];
    try {
      for (const line of lines && lines.length ? lines : [undefined]) {
        const o: Order = line
          ? {
              order_id: head.order_id,
              revenue: line.revenue ?? multiplyMoney(line.product.price ?? NaN, line.product.quantity ?? 1),
              currency: head.currency ?? line.product.currency,
            }
          : head;
        const ev = this.build_('purchase', { ...props, order: o, product: line ? line.product : props.product }, t);
        if (!ev) return [];
        events.push(ev);
      }
    } catch (e) {
      this.warn_(String(e));
      return [];
    }
    return this.enqueue_(events);
  }

  /** Sets the signed-in user's id on this and later events (kept across page loads). */
  identify(userId: string): void {
    if (!userId) return;
    this.user_ = String(userId).slice(0, 256);
    this.ids_.set(`${this.p_}uid`, this.user_);
  }

  /** Forgets the user id and starts a new anonymous id and session (on sign-out). */
  reset(): void {
    this.user_ = undefined;
    this.ids_.remove(`${this.p_}uid`);
    this.ids_.remove(`${this.p_}sid`);
    this.anon_ = uuid();
    this.ids_.set(`${this.p_}aid`, this.anon_);
  }

  /**
   * Grants or withdraws consent (with `requireConsent`). Granting stores the ids, persists and
   * sends the events held so far; withdrawing drops them and removes everything stored.
   */
  setConsent(granted: boolean): void {
    if (this.state_ === 'dnt') return;
    if (granted) {
      if (this.state_ === 'on') return;
      const held = this.queue_;
      const memAnon = this.anon_;
      const memUser = this.user_;
      this.queue_ = [];
      this.state_ = 'on';
      this.activate_();
      if (memUser && !this.user_) this.identify(memUser);
      for (const ev of held) {
        if (ev.anonymous_id === memAnon) ev.anonymous_id = this.anon_;
        if (!ev.user_id && this.user_) ev.user_id = this.user_;
      }
      this.enqueue_(held, true);
    } else {
      const dropped = this.queue_.map((e) => e.event_id);
      this.queue_ = [];
      this.state_ = 'denied';
      for (const k of ['aid', 'uid', 'sid']) this.ids_.remove(this.p_ + k);
      if (this.qs_ && this.qKey_) this.qs_.removeItem(this.qKey_);
      this.ids_ = memoryStore();
      this.anon_ = uuid();
      this.user_ = undefined;
      this.clearTimer_();
      if (dropped.length) this.report_({ status: -1, via: 'none', dropped });
    }
  }

  /** Sends queued events now (respecting a server's `Retry-After`); resolves when that request is done. */
  flush(): Promise<void> {
    this.clearTimer_();
    if (this.sending_) return this.sending_;
    if (this.state_ !== 'on' || G.navigator?.onLine === false) return Promise.resolve();
    const wait = this.retryAt_ - now();
    if (wait > 0) {
      this.schedule_(wait);
      return Promise.resolve();
    }
    const batch = this.take_(this.cap_, MAX_BODY_BYTES);
    if (!batch.length) return Promise.resolve();
    const p = this.send_(batch, 'fetch').then(() => {
      this.sending_ = undefined;
      this.next_();
    });
    this.sending_ = p;
    return p;
  }

  getAnonymousId(): string {
    return this.anon_;
  }

  getUserId(): string | undefined {
    return this.user_;
  }

  /** The current session id (without extending the session). */
  getSessionId(): string | undefined {
    return this.ids_.get(`${this.p_}sid`)?.split('|')[0];
  }

  /** Ids of the events not yet acknowledged by the collector. */
  queuedEventIds(): string[] {
    return this.queue_.map((e) => e.event_id);
  }

  /** Stops timers and listeners (for tests and single-page-app teardown); queued events stay persisted. */
  destroy(): void {
    this.clearTimer_();
    for (const f of this.off_) f();
    this.off_ = [];
    this.state_ = 'denied';
  }

  // ---- internals --------------------------------------------------------------------------

  /** Switches to persistent ids and loads the persisted queue. */
  private activate_(): void {
    const o = this.o_;
    const memoryOnly = o.persistence === 'memory';
    this.ids_ = idStore(o.persistence ?? 'localStorage', o.cookieMaxAgeDays ?? 365, o.cookieDomain);
    const aid = this.ids_.get(`${this.p_}aid`);
    if (aid) this.anon_ = aid;
    else this.ids_.set(`${this.p_}aid`, this.anon_);
    this.user_ = this.ids_.get(`${this.p_}uid`) || this.user_;
    this.qs_ = !memoryOnly && o.persistQueue !== false ? webStorage('localStorage') : undefined;
    if (this.qs_) this.loadQueue_(this.qs_);
    if (this.queue_.length) this.schedule_(0);
  }

  /** Adopts this tab's persisted queue (a reload) and queues other tabs left stale. */
  private loadQueue_(ls: Storage): void {
    const ss = webStorage('sessionStorage');
    const tabKey = `${this.p_}tab`;
    let tab = ss?.getItem(tabKey);
    if (!tab) {
      tab = uuid();
      ss?.setItem(tabKey, tab);
    }
    const prefix = `${this.p_}q_`;
    this.qKey_ = prefix + tab;
    const keys: string[] = [];
    for (let i = 0; i < ls.length; i++) {
      const k = ls.key(i);
      if (k && k.indexOf(prefix) === 0) keys.push(k);
    }
    const seen = new Set(this.queue_.map((e) => e.event_id));
    const adopted: WireEvent[] = [];
    for (const k of keys) {
      try {
        const data = JSON.parse(ls.getItem(k) || 'null') as { t: number; e: WireEvent[] } | null;
        if (k !== this.qKey_ && data && now() - data.t < STALE_QUEUE_MS) continue;
        for (const ev of data?.e ?? []) {
          if (ev && ev.event_id && !seen.has(ev.event_id)) {
            seen.add(ev.event_id);
            adopted.push(ev);
          }
        }
      } catch {
        /* a corrupt entry: drop it */
      }
      if (k !== this.qKey_) ls.removeItem(k);
    }
    this.queue_ = adopted.concat(this.queue_);
    this.trim_();
    this.persist_();
  }

  private build_(type: EventType, props: TrackProps, t: number): WireEvent | undefined {
    if (this.state_ !== 'on' && this.state_ !== 'pending') return undefined;
    const page = pageInfo(props.page);
    const ev = compact<WireEvent>({
      event_id: uuid(),
      event_type: type,
      event_name: props.event_name,
      event_time: iso(t),
      anonymous_id: this.anon_,
      user_id: this.user_,
      session_id: this.session_(t),
      page,
      product: props.product && compact(props.product),
      order: props.order && compact(props.order),
      search: props.search,
      context: contextFor(page?.url, this.o_.app),
      properties: props.properties,
    }) as WireEvent;
    const problem = problemOf(ev);
    if (problem) {
      this.warn_(`dropped a ${type} event: ${problem}`);
      this.report_({ status: -1, via: 'none', dropped: [ev.event_id] });
      return undefined;
    }
    return ev;
  }

  /** The session id, renewed after the inactivity timeout; extends the session to `t`. */
  private session_(t: number): string {
    const key = `${this.p_}sid`;
    const [id, last] = (this.ids_.get(key) || '').split('|');
    const timeout = (this.o_.sessionTimeoutMinutes ?? 30) * 60_000;
    const sid = id && t - Number(last) < timeout ? id : uuid();
    this.ids_.set(key, `${sid}|${t}`);
    return sid;
  }

  private enqueue_(events: WireEvent[], soon = false): string[] {
    this.queue_.push(...events);
    this.trim_();
    this.persist_();
    if (this.state_ === 'on') {
      if (soon || this.queue_.length - this.inflight_.size >= this.cap_) void this.flush();
      else this.schedule_(this.o_.flushIntervalMs ?? 5000);
    }
    return events.map((e) => e.event_id);
  }

  /** Drops the oldest events beyond `maxQueueSize` (never those in a request). */
  private trim_(): void {
    const max = Math.max(1, this.o_.maxQueueSize ?? 1000);
    const dropped: string[] = [];
    while (this.queue_.length > max) {
      const i = this.queue_.findIndex((e) => !this.inflight_.has(e.event_id));
      if (i < 0) break;
      dropped.push(this.queue_.splice(i, 1)[0].event_id);
    }
    if (dropped.length) {
      this.warn_(`the queue is full: dropped ${dropped.length} oldest events`);
      this.report_({ status: -1, via: 'none', dropped });
    }
  }

  private persist_(): void {
    const ls = this.qs_;
    if (!ls || this.state_ !== 'on') return;
    let events = this.queue_.filter((e) => !this.handedOff_.has(e.event_id));
    for (let tries = 0; tries < 4; tries++) {
      try {
        if (!events.length) ls.removeItem(this.qKey_);
        else ls.setItem(this.qKey_, JSON.stringify({ t: now(), e: events }));
        return;
      } catch {
        // Over the storage quota: keep the newest half.
        events = events.slice(Math.ceil(events.length / 2));
      }
    }
  }

  /** Up to `max` queued events not in a request, whose batch body stays under `bytes`. */
  private take_(max: number, bytes: number): WireEvent[] {
    const out: WireEvent[] = [];
    let size = 64;
    for (const ev of this.queue_) {
      if (out.length >= max) break;
      if (this.inflight_.has(ev.event_id)) continue;
      const n = byteLength(JSON.stringify(ev)) + 1;
      if (size + n > bytes) break;
      size += n;
      out.push(ev);
    }
    return out;
  }

  private async send_(events: WireEvent[], via: Via): Promise<void> {
    const body = JSON.stringify({ sent_at: iso(), events });
    const bytes = byteLength(body);
    const fetchFn: typeof fetch | undefined = this.o_.fetch || (G.fetch && G.fetch.bind(G));
    const ids = events.map((e) => e.event_id);
    // keepalive lets a request outlive the page; regular sends use it too while it fits the quota,
    // so that a navigation right after a flush does not cancel it.
    const ka = via === 'keepalive' || (this.canKeepalive_() && this.kaBytes_ + bytes <= KEEPALIVE_BUDGET);
    for (const id of ids) {
      this.inflight_.add(id);
      if (ka) this.kaInflight_.add(id);
    }
    if (ka) this.kaBytes_ += bytes;
    let status = 0;
    let retryAfter: string | null = null;
    let json: { rejected?: { index: number; field?: string; code?: string; message?: string }[] } | undefined;
    try {
      if (!fetchFn) throw new Error('no fetch');
      const res = await fetchFn(this.url_, {
        method: 'POST',
        body,
        keepalive: ka,
        credentials: 'omit',
        headers: { 'Content-Type': ka ? 'text/plain' : 'application/json', 'X-Write-Key': this.o_.writeKey },
      });
      status = res.status;
      retryAfter = res.headers.get('Retry-After');
      if (res.ok) json = await res.json().catch(() => undefined);
    } catch {
      status = 0;
    }
    for (const id of ids) {
      this.inflight_.delete(id);
      this.kaInflight_.delete(id);
      this.handedOff_.delete(id);
    }
    if (ka) this.kaBytes_ -= bytes;
    this.settle_(events, via, status, retryAfter, json);
  }

  private settle_(
    events: WireEvent[],
    via: Via,
    status: number,
    retryAfter: string | null,
    json: { rejected?: { index: number; field?: string; code?: string; message?: string }[] } | undefined,
  ): void {
    const ids = events.map((e) => e.event_id);
    const forget = () => {
      const done = new Set(ids);
      this.queue_ = this.queue_.filter((e) => !done.has(e.event_id));
    };
    if (status >= 200 && status < 300) {
      forget();
      this.attempt_ = 0;
      this.retryAt_ = 0;
      this.serverAsked_ = false;
      // After a 413, stay with the smaller batches until the queue has drained.
      if (!this.queue_.length) this.cap_ = this.batchSize_;
      const rejected = (json?.rejected ?? [])
        .filter((r) => events[r.index])
        .map((r) => ({ event_id: ids[r.index], field: r.field, code: r.code, message: r.message }));
      const bad = new Set(rejected.map((r) => r.event_id));
      if (rejected.length) this.warn_(`the collector rejected ${rejected.length} events`, rejected);
      this.report_({ status, via, accepted: ids.filter((id) => !bad.has(id)), rejected });
    } else if (status === 413 && events.length > 1) {
      // Too large: retry in halves.
      this.cap_ = Math.max(1, Math.floor(events.length / 2));
      this.report_({ status, via, retrying: ids, retryInMs: 0 });
    } else if (status === 0 || status === 408 || status === 429 || status >= 500) {
      const base = this.o_.retryBaseDelayMs ?? 1000;
      const exp = Math.min(this.o_.retryMaxDelayMs ?? 60_000, base * 2 ** Math.min(this.attempt_++, 30));
      let delay = exp / 2 + (Math.random() * exp) / 2;
      const asked = retryAfterMs(retryAfter);
      if (asked !== undefined) delay = Math.max(delay, asked);
      this.serverAsked_ = asked !== undefined;
      this.retryAt_ = Math.max(this.retryAt_, now() + delay);
      this.report_({ status, via, retrying: ids, retryInMs: Math.round(delay) });
    } else {
      // Any other 4xx will fail again: never retried.
      forget();
      this.warn_(`the collector answered ${status}; dropped ${ids.length} events`);
      this.report_({ status, via, dropped: ids });
    }
    this.persist_();
  }

  /** After a regular request: send on, or wait for the timer or the retry. */
  private next_(): void {
    const pending = this.queue_.length - this.inflight_.size;
    if (pending <= 0 || this.state_ !== 'on') return;
    const wait = this.retryAt_ - now();
    if (wait > 0) this.schedule_(wait);
    else if (pending >= this.cap_) void this.flush();
    else this.schedule_(this.o_.flushIntervalMs ?? 5000);
  }

  private schedule_(ms: number): void {
    const at = now() + Math.max(ms, this.retryAt_ - now(), 0);
    if (this.timer_ !== undefined && this.timerAt_ <= at) return;
    this.clearTimer_();
    this.timerAt_ = at;
    this.timer_ = setTimeout(() => {
      this.timer_ = undefined;
      void this.flush();
    }, at - now());
  }

  private clearTimer_(): void {
    if (this.timer_ !== undefined) clearTimeout(this.timer_);
    this.timer_ = undefined;
  }

  private canKeepalive_(): boolean {
    if (this.o_.fetch) return true;
    try {
      return typeof G.fetch === 'function' && typeof Request !== 'undefined' && 'keepalive' in Request.prototype;
    } catch {
      return false;
    }
  }

  /**
   * The page is being hidden (tab switch, navigation, close): send every queued event now with
   * `fetch(..., {keepalive: true})`, which the browser completes after the page is gone, within
   * its 64 KiB budget. Those events leave localStorage (the request outlives the page) unless
   * recent sends failed; the rest stay there for the next page load.
   */
  private onHide_(): void {
    if (this.state_ !== 'on') return;
    this.clearTimer_();
    // While sends are failing, a keepalive request may well fail too, unseen: keep a copy then
    // (a duplicate with the same event_id is harmless; a lost event is not).
    const handOff = this.attempt_ === 0;
    if (handOff) for (const id of this.kaInflight_) this.handedOff_.add(id);
    const blocked = G.navigator?.onLine === false || (this.serverAsked_ && this.retryAt_ > now());
    for (let i = 0; !blocked && i < MAX_BATCH_EVENTS; i++) {
      if (this.canKeepalive_()) {
        const batch = this.take_(this.cap_, KEEPALIVE_BUDGET - this.kaBytes_);
        if (!batch.length) break;
        if (handOff) for (const ev of batch) this.handedOff_.add(ev.event_id);
        void this.send_(batch, 'keepalive');
      } else {
        // No keepalive: sendBeacon cannot carry the write key (no headers), so the collector
        // answers 401 today. Best effort only: the events stay persisted for the next page load.
        const batch = this.take_(this.cap_, KEEPALIVE_BUDGET).filter((e) => !this.beaconed_.has(e.event_id));
        for (const ev of batch) this.beaconed_.add(ev.event_id);
        const nav = G.navigator;
        if (batch.length && nav && typeof nav.sendBeacon === 'function') {
          try {
            const body = JSON.stringify({ sent_at: iso(), events: batch });
            nav.sendBeacon(this.url_, new Blob([body], { type: 'text/plain' }));
          } catch {
            /* ignore */
          }
        }
        break;
      }
    }
    this.persist_();
  }

  private listen_(): void {
    const doc = G.document;
    const on = (target: EventTarget | undefined, type: string, fn: () => void) => {
      if (!target || typeof target.addEventListener !== 'function') return;
      target.addEventListener(type, fn);
      this.off_.push(() => target.removeEventListener(type, fn));
    };
    on(doc, 'visibilitychange', () => {
      if (doc.visibilityState === 'hidden') this.onHide_();
      else {
        this.beaconed_.clear();
        this.next_();
      }
    });
    on(G, 'pagehide', () => this.onHide_());
    on(G, 'online', () => void this.flush());
  }

  private report_(r: Partial<DeliveryReport> & { status: number; via: Via }): void {
    const full: DeliveryReport = { accepted: [], rejected: [], dropped: [], retrying: [], ...r };
    try {
      this.o_.onReport?.(full);
    } catch {
      /* never let a callback break tracking */
    }
  }

  private warn_(message: string, detail?: unknown): void {
    if (this.o_.debug && G.console) G.console.warn(`clickstream: ${message}`, detail ?? '');
  }
}
