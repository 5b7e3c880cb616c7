import type { Persistence } from './types';
import { G } from './util';

/** A small key-value store over localStorage, cookies or memory. Never throws. */
export interface Store {
  kind: Persistence;
  get(key: string): string | null;
  set(key: string, value: string): boolean;
  remove(key: string): void;
}

export function memoryStore(): Store {
  const m = new Map<string, string>();
  return {
    kind: 'memory',
    get: (k) => (m.has(k) ? (m.get(k) as string) : null),
    set: (k, v) => (m.set(k, v), true),
    remove: (k) => void m.delete(k),
  };
}

/** The Web Storage object named `name`, if it exists and works (it throws in some privacy modes). */
export function webStorage(name: 'localStorage' | 'sessionStorage'): Storage | undefined {
  try {
    const s: Storage | undefined = G[name];
    if (!s) return undefined;
    const probe = '__cs_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return undefined;
  }
}

export function localStore(s: Storage): Store {
  return {
    kind: 'localStorage',
    get: (k) => {
      try {
        return s.getItem(k);
      } catch {
        return null;
      }
    },
    set: (k, v) => {
      try {
        s.setItem(k, v);
        return true;
      } catch {
        return false;
      }
    },
    remove: (k) => {
      try {
        s.removeItem(k);
      } catch {
        /* ignore */
      }
    },
  };
}

export function cookieStore(maxAgeDays: number, domain?: string): Store | undefined {
  const doc = G.document;
  try {
    if (!doc || typeof doc.cookie !== 'string') return undefined;
  } catch {
    return undefined;
  }
  const secure = G.location && G.location.protocol === 'https:' ? '; Secure' : '';
  const dom = domain ? `; domain=${domain}` : '';
  const write = (k: string, v: string, age: number): boolean => {
    try {
      doc.cookie = `${k}=${encodeURIComponent(v)}; path=/; max-age=${age}; SameSite=Lax${dom}${secure}`;
      return true;
    } catch {
      return false;
    }
  };
  const store: Store = {
    kind: 'cookie',
    get: (k) => {
      try {
        for (const part of (doc.cookie as string).split(';')) {
          const i = part.indexOf('=');
          if (i > 0 && part.slice(0, i).trim() === k) return decodeURIComponent(part.slice(i + 1).trim());
        }
      } catch {
        /* ignore */
      }
      return null;
    },
    set: (k, v) => write(k, v, Math.round(maxAgeDays * 86400)),
    remove: (k) => void write(k, '', 0),
  };
  // Cookies may be disabled: check that a write reads back.
  store.set('cs_probe', '1');
  const works = store.get('cs_probe') === '1';
  store.remove('cs_probe');
  return works ? store : undefined;
}

/** The store for ids: the configured kind, else the next that works (localStorage → cookie → memory). */
export function idStore(kind: Persistence, maxAgeDays: number, domain?: string): Store {
  if (kind === 'memory') return memoryStore();
  if (kind === 'localStorage') {
    const ls = webStorage('localStorage');
    if (ls) return localStore(ls);
  }
  return cookieStore(maxAgeDays, domain) || memoryStore();
}
