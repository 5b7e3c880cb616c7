// Reads the collector's on-disk spool: DIR/<stream>/*.seg (sealed) and *.open (being written).
// A segment is the magic `CLKSPL01`, then records `[u32 LE length][u32 LE crc32c][payload]`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MAGIC = Buffer.from('CLKSPL01');
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Payloads of one segment file, stopping at a torn or corrupt tail. */
export function readSegment(file) {
  const buf = readFileSync(file);
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return [];
  const out = [];
  let at = MAGIC.length;
  while (at + 8 <= buf.length) {
    const len = buf.readUInt32LE(at);
    const crc = buf.readUInt32LE(at + 4);
    if (len === 0 || at + 8 + len > buf.length) break;
    const payload = buf.subarray(at + 8, at + 8 + len);
    if (crc32c(payload) !== crc) break;
    out.push(payload.toString('utf8'));
    at += 8 + len;
  }
  return out;
}

/** Every record of a spool stream (`events` or `failed`), parsed as JSON. */
export function readStream(spoolDir, stream) {
  const dir = join(spoolDir, stream);
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.seg') || n.endsWith('.open'))
    .sort()
    .flatMap((n) => readSegment(join(dir, n)))
    .map((text) => JSON.parse(text));
}
