import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { stream, lines };
}

describe('log redaction', () => {
  it('when secrets sit at the top level, one level down, or in a failed MULTI, then none is written', () => {
    const { stream, lines } = capture();
    const logger = createLogger('info', stream);
    logger.info(
      {
        authReqId: 'top-secret-1',
        accessToken: 'top-secret-2',
        nested: { clientSecret: 'top-secret-3' },
        err: { command: { args: ['top-secret-4'] }, previousErrors: [{ command: { args: ['top-secret-5'] } }] },
      },
      'x',
    );
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    expect(out).not.toMatch(/top-secret/);
  });
});
