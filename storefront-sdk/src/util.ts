import type { Money } from './types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const G: any = globalThis;

/** A version 4 UUID: `crypto.randomUUID`, else `crypto.getRandomValues`, else `Math.random`. */
export function uuid(): string {
  const c = G.crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID();
    } catch {
      /* insecure context: fall through */
    }
  }
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h: string[] = [];
  for (let i = 0; i < 16; i++) h.push((b[i] + 0x100).toString(16).slice(1));
  return `${h.slice(0, 4).join('')}-${h.slice(4, 6).join('')}-${h.slice(6, 8).join('')}-${h.slice(8, 10).join('')}-${h.slice(10).join('')}`;
}

export const now = (): number => Date.now();

export const iso = (ms: number = now()): string => new Date(ms).toISOString();

/** UTF-8 length of a string. */
export function byteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** `s` cut to at most `max` characters; undefined for empty values. */
export function clip(s: unknown, max: number): string | undefined {
  if (typeof s !== 'string' || s === '') return undefined;
  return s.length > max ? s.slice(0, max) : s;
}

/** Copy of `o` without undefined members (the collector rejects nothing for null, but keeps payloads small). */
export function compact<T extends object>(o: T): T | undefined {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const k in o) {
    const v = o[k];
    if (v !== undefined) {
      out[k] = v;
      any = true;
    }
  }
  return any ? (out as T) : undefined;
}

/** `price * quantity` as an exact decimal string (no floating-point noise). */
export function multiplyMoney(price: Money, quantity: number): string {
  let s = typeof price === 'number' ? String(price) : price.trim();
  if (/e/i.test(s)) s = Number(s).toFixed(9);
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || !(m[1] || m[2]) || !Number.isInteger(quantity) || quantity < 0) {
    throw new TypeError(`clickstream: cannot multiply price ${String(price)} by quantity ${quantity}`);
  }
  const frac = m[2] || '';
  const digits = (BigInt((m[1] || '0') + frac) * BigInt(quantity)).toString().padStart(frac.length + 1, '0');
  if (!frac) return digits;
  const out = `${digits.slice(0, -frac.length)}.${digits.slice(-frac.length)}`.replace(/\.?0+$/, '');
  return out || '0';
}
