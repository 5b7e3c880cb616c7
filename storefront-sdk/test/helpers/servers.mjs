// Test fixtures: the real collector on a free loopback port with a temporary spool, and a tiny
// static server for the demo storefront. Everything listens on 127.0.0.1 only.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SDK_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const REPO_ROOT = join(SDK_ROOT, '..');

export function collectorBinary() {
  return process.env.CLICKSTREAM_COLLECTOR_BIN || join(REPO_ROOT, 'target/debug/clickstream-collector');
}

export function chromiumPath() {
  return process.env.CHROMIUM_PATH || '/usr/bin/chromium';
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

/** Serves `/` (the demo page), `/demo/*` and `/dist/*` from the SDK folder. */
export async function startStaticServer() {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const rel = path === '/' ? 'demo/index.html' : path.slice(1);
    const file = normalize(join(SDK_ROOT, rel));
    const allowed = [join(SDK_ROOT, 'demo') + sep, join(SDK_ROOT, 'dist') + sep].some((d) => file.startsWith(d));
    if (!allowed || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** A port that was free a moment ago. */
export async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((r) => s.close(() => r()));
  return port;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts the collector; resolves once GET /readyz answers 200 (at most 3 ports, 15 s each). */
export async function startCollector({ writeKey, corsOrigin }) {
  const bin = collectorBinary();
  if (!existsSync(bin)) throw new Error(`collector binary missing at ${bin}: run cargo build -p collector`);
  const spoolDir = mkdtempSync(join(tmpdir(), 'cs-sdk-spool-'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    let output = '';
    const child = spawn(
      bin,
      [
        '--listen', `127.0.0.1:${port}`,
        '--spool-dir', spoolDir,
        '--write-key', `${writeKey}=storefront-sdk-test`,
        '--cors-origin', corsOrigin,
        '--spool-segment-age-ms', '200',
        '--shutdown-grace-seconds', '2',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + 15_000;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${endpoint}/readyz`);
        if (res.status === 200) {
          const stop = async () => {
            if (!exited) {
              child.kill('SIGTERM');
              for (let i = 0; i < 50 && !exited; i++) await sleep(100);
              if (!exited) child.kill('SIGKILL');
            }
            rmSync(spoolDir, { recursive: true, force: true });
          };
          return { endpoint, spoolDir, stop, log: () => output };
        }
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    if (!exited) child.kill('SIGKILL');
    if (attempt === 2) {
      rmSync(spoolDir, { recursive: true, force: true });
      throw new Error(`the collector did not get ready:\n${output}`);
    }
  }
  throw new Error('unreachable');
}
