import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { createPollConnections, type PollConnections } from './poll-connections.js';

/** TLS material for the bank connection, read once from the files named in the configuration. */
export interface BankTlsOptions {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  pfx?: Buffer;
  passphrase?: string;
}

/**
 * Reads the CA and the client certificate (PEM pair, or PKCS#12 as banks hand them out).
 * The PEM pair wins when both are configured, since it needs no passphrase.
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-2
 */
export function readBankTlsOptions(bank: Config['bank']): BankTlsOptions {
  const ca = readFileSync(bank.caCertFile);
  if (bank.clientCertFile && bank.clientKeyFile) {
    return { ca, cert: readFileSync(bank.clientCertFile), key: readFileSync(bank.clientKeyFile) };
  }
  if (bank.clientPfxFile) {
    const pfx = readFileSync(bank.clientPfxFile);
    return bank.clientPfxPassphrase === undefined ? { ca, pfx } : { ca, pfx, passphrase: bank.clientPfxPassphrase };
  }
  throw new Error('bank client certificate: configure a PEM certificate and key, or a PKCS#12 file');
}

/**
 * The one undici Agent for every bank call (OP and payment API). The client certificate is always
 * presented, because the payment API is mTLS whatever the token endpoint's client auth is, and the
 * bank's certificate is always verified against the configured CA.
 * `connections` caps the sockets per bank origin; keep-alive keeps the hot token poll off the TLS handshake.
 * `pipelining` (BANK_PIPELINING, opt-in, default 1) lets a connection carry several token polls at once;
 * undici never pipelines a request not marked idempotent (the payment call), so only polls share a
 * connection, and the re-send undici would make of them after a broken connection is refused
 * (whole-response.ts). Without pipelining, token polls take their own connections of the same TLS
 * setup instead (pollConnectionsOf, poll-connections.ts), so the token endpoint's origin may have up
 * to `connections` more.
 */
export function createBankAgent(bank: Config['bank']): Agent {
  const tls = readBankTlsOptions(bank);
  const connector = buildConnector({ ...tls, rejectUnauthorized: true, timeout: bank.timeoutMs });
  const writes = createWriteCoalescer();
  const polls =
    bank.pipelining > 1
      ? null
      : (origin: URL) =>
          createPollConnections({
            connect: connector,
            origin,
            connections: bank.maxConnections,
            timeoutMs: bank.timeoutMs,
            keepAliveMs: KEEP_ALIVE_MS,
            keepAliveMaxMs: KEEP_ALIVE_MAX_MS,
          });
  return new BankAgent(writes, polls, {
    connect: (options, callback) => {
      connector(options, (...answer) => {
        if (answer[1]) writes.track(answer[1]);
        callback(...answer);
      });
    },
    connections: bank.maxConnections,
    pipelining: bank.pipelining,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MAX_MS,
    headersTimeout: bank.timeoutMs,
    bodyTimeout: bank.timeoutMs,
  });
}

/**
 * Issue 12.4: a TLS write is one encryption and one syscall, the largest single cost of a token poll
 * (a fifth of the service's CPU at 20k pending). The polls of one claimed batch are dispatched in one
 * turn of the event loop; holding the bank sockets corked until that turn ends sends the requests
 * pipelined on one connection in one write. Nothing waits longer than the next turn.
 */
class BankAgent extends Agent {
  readonly #writes: WriteCoalescer;
  readonly #createPolls: ((origin: URL) => PollConnections) | null;
  readonly #polls = new Map<string, PollConnections>();
  constructor(writes: WriteCoalescer, createPolls: ((origin: URL) => PollConnections) | null, options: Agent.Options) {
    super(options);
    this.#writes = writes;
    this.#createPolls = createPolls;
  }
  // The base's overloads, repeated to override them: the poll connections close with the agent.
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | undefined {
    this.#closePolls();
    if (!callback) return super.close();
    super.close(callback);
    return undefined;
  }
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(callback: () => void): void;
  // eslint-disable-next-line @typescript-eslint/unified-signatures
  override destroy(err: Error | null): Promise<void>;
  override destroy(): Promise<void>;
  override destroy(first?: Error | null | (() => void), callback?: () => void): Promise<void> | undefined {
    this.#closePolls();
    const err = typeof first === 'function' ? null : (first ?? null);
    const done = typeof first === 'function' ? first : callback;
    if (!done) return super.destroy(err);
    super.destroy(err, done);
    return undefined;
  }
  #closePolls(): void {
    for (const polls of this.#polls.values()) polls.close();
    this.#polls.clear();
  }
  override dispatch(options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // Only a pipelined request (a poll, marked idempotent) can share a connection and so a write;
    // any other (a checkout's backchannel request, a payment call) gains nothing from being held, and
    // holding would delay it by two turns and cork every bank socket for it (issue 12.4, checkout).
    if (options.idempotent === true) this.#writes.hold();
    return super.dispatch(options, handler);
  }
  pollConnections(origin: URL): PollConnections | undefined {
    if (!this.#createPolls || this.closed || this.destroyed) return undefined;
    let polls = this.#polls.get(origin.origin);
    if (!polls) {
      polls = this.#createPolls(origin);
      this.#polls.set(origin.origin, polls);
    }
    return polls;
  }
}

const KEEP_ALIVE_MS = 30_000;
const KEEP_ALIVE_MAX_MS = 120_000;

/**
 * The token poll's own connections to `origin` when `agent` is the bank agent and polls are not
 * pipelined (BANK_PIPELINING=1, the default); undefined otherwise (undici carries them).
 */
export function pollConnectionsOf(agent: Dispatcher, origin: URL): PollConnections | undefined {
  return agent instanceof BankAgent ? agent.pollConnections(origin) : undefined;
}

interface WriteCoalescer {
  track(socket: Socket): void;
  /** Corks every open socket until the end of this turn (once per turn). */
  hold(): void;
}

function createWriteCoalescer(): WriteCoalescer {
  const sockets = new Set<Socket>();
  let corked: Socket[] | null = null;
  const release = (): void => {
    const held = corked ?? [];
    corked = null;
    for (const socket of held) socket.uncork();
  };
  return {
    track(socket) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    },
    hold() {
      if (corked) return;
      corked = [];
      for (const socket of sockets) {
        if (socket.destroyed) continue;
        socket.cork();
        corked.push(socket);
      }
      // Two turns' ends: undici writes a request for an idle connection only at the end of the turn
      // (setImmediate, its idle-socket check), and those writes are to be gathered too.
      setImmediate(() => setImmediate(release));
    },
  };
}
