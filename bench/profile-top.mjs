// Top self-time functions of a V8 .cpuprofile (as written by `node --cpu-prof`).
//   node bench/profile-top.mjs <file.cpuprofile> [count]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function summarizeProfile(file, count = 15) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  // time of sample i is attributed to its node (as Chrome DevTools does)
  profile.samples.forEach((nodeId, i) => {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + dt);
  });
  const byFunction = new Map();
  let total = 0;
  for (const [nodeId, us] of selfUs) {
    const { callFrame } = byId.get(nodeId);
    const where = callFrame.url
      ? `${callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${callFrame.lineNumber + 1}`
      : '';
    const key = `${callFrame.functionName || '(anonymous)'}\u0000${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    total += us;
  }
  return [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, us]) => {
      const [name, where] = key.split('\u0000');
      return { name, where, self_ms: Math.round(us / 1000), percent: Math.round((us / total) * 1000) / 10 };
    });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, count] = process.argv.slice(2);
  for (const row of summarizeProfile(file, Number(count ?? 25))) {
    process.stdout.write(
      `${String(row.percent).padStart(5)}%  ${String(row.self_ms).padStart(7)} ms  ${row.name}  ${row.where}\n`,
    );
  }
}
