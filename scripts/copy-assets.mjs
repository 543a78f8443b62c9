// Copies what tsc does not: Lua scripts and static pages, from src/ into dist/ at the same paths.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ASSET = /\.(lua|html|css|js|svg|png|ico|json)$/;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (ASSET.test(name) && !name.endsWith('.d.ts')) cpSync(path, join('dist', relative('src', path)));
  }
}
walk('src');
