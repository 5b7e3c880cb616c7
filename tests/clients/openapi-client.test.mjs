// A client generated from openapi/clickstream.yaml by an independent generator
// (openapi-typescript types + openapi-fetch, from npm) sends a batch the collector accepts.
// `npm run generate` regenerates the types from the spec and `npm run typecheck` checks the
// client code below (client.ts) against them, so a spec the client cannot use fails the suite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCollector } from '../../storefront-sdk/test/helpers/servers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));

test('the generated client sends a batch the collector accepts', async () => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: here, stdio: 'inherit' });
  const { sendBatch } = await import('./build/client.js');
  const collector = await startCollector({ writeKey: 'generated-key', corsOrigin: 'http://127.0.0.1' });
  try {
    const { status, data, error } = await sendBatch(collector.endpoint, 'generated-key');
    assert.equal(status, 200, JSON.stringify(error));
    assert.equal(data.accepted, 2);
    assert.deepEqual(data.rejected, []);
    assert.equal(data.event_ids.length, 2);
  } finally {
    await collector.stop();
  }
});
