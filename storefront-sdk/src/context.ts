import type { Campaign, Context, NameVersion, PageInfo } from './types';
import { G, clip, compact } from './util';

declare const __SDK_NAME__: string;
declare const __SDK_VERSION__: string;

/** The library that sends the events, as `context.library`. */
export const LIBRARY: NameVersion = {
  name: typeof __SDK_NAME__ === 'string' ? __SDK_NAME__ : '@clickstream/storefront-sdk',
  version: typeof __SDK_VERSION__ === 'string' ? __SDK_VERSION__ : '0.0.0-dev',
};

const UTM: (keyof Campaign)[] = ['source', 'medium', 'name', 'term', 'content'];

/** `utm_source` … `utm_content` of `url` (`utm_campaign` is the campaign name). */
export function campaignOf(url: string | undefined): Campaign | undefined {
  if (!url) return undefined;
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return undefined;
  }
  const c: Campaign = {};
  for (const k of UTM) c[k] = clip(params.get(k === 'name' ? 'utm_campaign' : `utm_${k}`), 256);
  return compact(c);
}

/** Page fields from `location` and `document`, overridden by `over`. */
export function pageInfo(over?: PageInfo): PageInfo | undefined {
  const loc = G.location;
  const doc = G.document;
  let href: string | undefined;
  let path: string | undefined;
  let referrer: string | undefined;
  let title: string | undefined;
  try {
    href = loc && typeof loc.href === 'string' && /^https?:/.test(loc.href) ? loc.href : undefined;
    path = loc ? loc.pathname : undefined;
    referrer = doc ? doc.referrer : undefined;
    title = doc ? doc.title : undefined;
  } catch {
    /* ignore */
  }
  const p: PageInfo = {
    // An over-long URL cannot be cut without making it invalid: leave it out.
    url: href && href.length <= 4096 ? href : undefined,
    path: clip(path, 2048),
    referrer: clip(referrer, 4096),
    title: clip(title, 1024),
    ...over,
  };
  return compact(p);
}

/** `context` for an event on the current page. */
export function contextFor(url: string | undefined, app?: NameVersion): Context {
  const nav = G.navigator;
  const scr = G.screen;
  let locale: string | undefined;
  let screen: Context['screen'];
  try {
    const l = nav && (nav.language as string);
    locale = l && l.length >= 2 && l.length <= 35 ? l : undefined;
    const w = scr && Math.round(scr.width);
    const h = scr && Math.round(scr.height);
    screen = w >= 1 && h >= 1 && w <= 100000 && h <= 100000 ? { width: w, height: h } : undefined;
  } catch {
    /* ignore */
  }
  return compact({
    platform: 'web',
    app,
    locale,
    screen,
    library: LIBRARY,
    campaign: campaignOf(url),
  }) as Context;
}
