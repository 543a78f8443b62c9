// The IPC protocol between bench/run.mjs and a baseline child process: `start` (with the run's
// parameters), `stats` (CPU and RSS of this process), `stop` (clean up, then exit).
export function serveBaseline({ start, stop }) {
  process.on('message', (msg) => {
    const reply = (value) => process.send?.({ id: msg.id, ...value });
    if (msg.cmd === 'start') {
      start(msg).then(
        () => reply({}),
        (err) => reply({ error: String(err) }),
      );
    } else if (msg.cmd === 'stats') {
      reply({ cpu: process.cpuUsage(), rss: process.memoryUsage().rss });
    } else if (msg.cmd === 'stop') {
      Promise.resolve()
        .then(stop)
        .finally(() => process.exit(0));
    }
  });
  process.send?.({ ready: true });
}
