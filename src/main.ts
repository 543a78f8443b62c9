import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { startService } from './composition/service.js';

/** Starts ROLE=api|worker|all from the environment alone, and stops cleanly on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ciba-checkout: configuration error: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  let stop: (signal: string, exitCode?: number) => void = () => undefined;
  const service = await startService(config, {
    logger,
    // A conflict found after start-up: stop claiming and sealing, drain, exit non-zero; restarted by
    // the orchestrator, the start-up check refuses with the same one line.
    onFatal: (err) => {
      process.stderr.write(`ciba-checkout: stopping: ${err.message}\n`);
      stop('conflict', 1);
    },
  });
  logger.info({ role: config.role, url: service.url, deliveryMode: config.ciba.deliveryMode }, 'ciba-checkout started');

  let stopping = false;
  stop = (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    const hardStop = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    hardStop.unref();
    service.close().then(
      () => {
        logger.info('stopped');
        process.exit(exitCode);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`ciba-checkout: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
