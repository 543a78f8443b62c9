import { Cluster } from 'ioredis';
import { followAskPastRedirectionBudget } from '../../src/store/cluster-ask-budget.js';

/**
 * The shim over ioredis' own handleError (a client that never connects): which redirect handler each
 * error reaches as one pipeline's budget is spent. The slot-migration crash it prevents is shown
 * against a real cluster in test/integration/cluster-ask-wait.test.ts.
 */
describe('an ASK after the redirection budget is spent', () => {
  const clients: Cluster[] = [];
  afterAll(() => {
    clients.forEach((c) => {
      c.disconnect();
    });
  });

  function shimmed(maxRedirections: number) {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], {
      lazyConnect: true,
      maxRedirections,
      retryDelayOnTryAgain: 0,
    });
    clients.push(cluster);
    followAskPastRedirectionBudget(cluster);
    const calls: string[] = [];
    const handlers = {
      ask: (slot: string, address: string) => calls.push(`ask ${slot} ${address}`),
      moved: () => calls.push('moved'),
      tryagain: () => calls.push('tryagain'),
      clusterDown: () => calls.push('clusterDown'),
      connectionClosed: () => calls.push('connectionClosed'),
      maxRedirections: () => calls.push('maxRedirections'),
      defaults: () => calls.push('defaults'),
    };
    const budget = {};
    const meet = (message: string) => {
      cluster.handleError(new Error(message), budget, handlers);
    };
    return { calls, meet };
  }
  const tryAgain = 'TRYAGAIN Multiple keys request during rehashing of slot';
  const ask = 'ASK 4242 127.0.0.1:7122';
  const delayed = () => new Promise((resolve) => setTimeout(resolve, 5));

  test('after TRYAGAIN rounds spent it, the next ASK is followed once; a second one ends the budget', async () => {
    const { calls, meet } = shimmed(3);
    meet(tryAgain); // the budget is set: 3
    meet(tryAgain); // 2
    meet(tryAgain); // 1 left: the next redirection would end it
    meet(ask);
    meet(ask);
    await delayed(); // ioredis delays a TRYAGAIN
    // The ASKs are handled at once, the TRYAGAINs after ioredis' delay.
    expect(calls).toEqual(['ask 4242 127.0.0.1:7122', 'maxRedirections', 'tryagain', 'tryagain', 'tryagain']);
  });

  test('with no budget at all, the first ASK is followed and the next one is not', () => {
    const { calls, meet } = shimmed(0);
    meet(ask);
    meet(ask);
    expect(calls).toEqual(['ask 4242 127.0.0.1:7122', 'maxRedirections']);
  });

  test('within the budget ioredis decides as before', async () => {
    const { calls, meet } = shimmed(16);
    meet(ask);
    meet('MOVED 4242 127.0.0.1:7123');
    meet(tryAgain);
    await delayed();
    expect(calls).toEqual(['ask 4242 127.0.0.1:7122', 'moved', 'tryagain']);
  });
});
