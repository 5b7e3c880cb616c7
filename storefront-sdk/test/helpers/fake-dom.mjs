// A minimal browser environment for unit tests in Node: Web Storage, document (cookies,
// visibility), location, navigator, screen and window events, plus a scripted fetch.

export class MemoryStorage {
  #m = new Map();
  get length() {
    return this.#m.size;
  }
  key(i) {
    return [...this.#m.keys()][i] ?? null;
  }
  getItem(k) {
    return this.#m.has(k) ? this.#m.get(k) : null;
  }
  setItem(k, v) {
    this.#m.set(k, String(v));
  }
  removeItem(k) {
    this.#m.delete(k);
  }
  clear() {
    this.#m.clear();
  }
}

function define(name, value) {
  Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
}

const NAMES = ['localStorage', 'sessionStorage', 'document', 'location', 'navigator', 'screen', 'addEventListener', 'removeEventListener', 'dispatchEvent'];

/** Installs the fake globals; returns handles and `restore()`. */
export function installDom({ href = 'https://shop.example/products/42?utm_source=ads&utm_medium=cpc&utm_campaign=spring&x=1', navigator = {}, local = new MemoryStorage() } = {}) {
  const saved = NAMES.map((n) => [n, Object.getOwnPropertyDescriptor(globalThis, n)]);
  const win = new EventTarget();
  const doc = new EventTarget();
  const jar = new Map();
  Object.defineProperty(doc, 'cookie', {
    get: () => [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
    set: (line) => {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const k = pair.slice(0, i).trim();
      const expired = attrs.some((a) => a.trim() === 'max-age=0');
      if (expired) jar.delete(k);
      else jar.set(k, pair.slice(i + 1).trim());
    },
  });
  doc.referrer = 'https://search.example/?q=phone';
  doc.title = 'Phone X – Demo shop';
  doc.visibilityState = 'visible';
  const url = new URL(href);
  define('localStorage', local);
  define('sessionStorage', new MemoryStorage());
  define('document', doc);
  define('location', { href: url.href, pathname: url.pathname, protocol: url.protocol, origin: url.origin });
  define('navigator', { language: 'de-DE', onLine: true, ...navigator });
  define('screen', { width: 1440, height: 900 });
  define('addEventListener', win.addEventListener.bind(win));
  define('removeEventListener', win.removeEventListener.bind(win));
  define('dispatchEvent', win.dispatchEvent.bind(win));
  return {
    local,
    doc,
    cookies: jar,
    hide() {
      doc.visibilityState = 'hidden';
      doc.dispatchEvent(new Event('visibilitychange'));
      win.dispatchEvent(new Event('pagehide'));
    },
    show() {
      doc.visibilityState = 'visible';
      doc.dispatchEvent(new Event('visibilitychange'));
    },
    fire: (type) => win.dispatchEvent(new Event(type)),
    restore() {
      for (const [n, d] of saved) {
        if (d) Object.defineProperty(globalThis, n, d);
        else delete globalThis[n];
      }
    },
  };
}

/**
 * A fetch that records each request and answers with `respond(request, n)`: an object
 * `{status, headers, body}`, or `'network'` to fail like a dropped connection.
 */
export function fakeFetch(respond = () => ({ status: 200 })) {
  const calls = [];
  const fn = async (url, init) => {
    const body = JSON.parse(init.body);
    const call = { url, init, body, ids: body.events.map((e) => e.event_id), bytes: Buffer.byteLength(init.body), at: Date.now() };
    calls.push(call);
    const answer = await respond(call, calls.length);
    if (answer === 'network') throw new TypeError('Failed to fetch');
    const status = answer.status ?? 200;
    const json = answer.body ?? (status < 300 ? { accepted: call.ids.length, event_ids: call.ids, rejected: [] } : { error: 'x' });
    return new Response(JSON.stringify(json), { status, headers: answer.headers ?? {} });
  };
  fn.calls = calls;
  return fn;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `fn()` is truthy (polling every 5 ms, at most `ms`). */
export async function until(fn, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${fn}`);
    await sleep(5);
  }
}
