// Builds dist/: index.mjs (ESM), clickstream.min.js (IIFE, global `clickstream`), types/*.d.ts,
// and prints the gzipped sizes. Offline: only esbuild and typescript from node_modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const sizeOnly = process.argv.includes('--size-only');

if (!sizeOnly) {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  const common = {
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    minify: true,
    target: ['es2020'],
    legalComments: 'none',
    define: { __SDK_NAME__: JSON.stringify(pkg.name), __SDK_VERSION__: JSON.stringify(pkg.version) },
    mangleProps: /[a-z]_$/,
    logLevel: 'warning',
  };
  await build({ ...common, format: 'esm', outfile: join(root, 'dist/index.mjs'), sourcemap: true });
  await build({
    ...common,
    format: 'iife',
    globalName: 'clickstream',
    outfile: join(root, 'dist/clickstream.min.js'),
    sourcemap: true,
  });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
}

for (const file of ['dist/index.mjs', 'dist/clickstream.min.js']) {
  const code = readFileSync(join(root, file));
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${file}: ${code.length} bytes minified, ${gz} bytes gzipped`);
}
