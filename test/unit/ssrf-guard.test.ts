import {
  assertAllowedUrl,
  BlockedAddressError,
  createGuardedLookup,
  isPublicAddress,
} from '../../src/webhooks/ssrf-guard.js';

describe('isPublicAddress', () => {
  test.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback, end of 127/8'],
    ['10.0.0.1', 'RFC 1918 10/8'],
    ['10.255.255.255', 'RFC 1918 10/8, last'],
    ['172.16.0.1', 'RFC 1918 172.16/12, first'],
    ['172.31.255.254', 'RFC 1918 172.16/12, last'],
    ['192.168.1.1', 'RFC 1918 192.168/16'],
    ['169.254.169.254', 'link-local, cloud metadata'],
    ['100.64.0.1', 'CGNAT 100.64/10, first'],
    ['100.127.255.254', 'CGNAT 100.64/10, last'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', '"this network" 0/8'],
    ['224.0.0.1', 'multicast 224/4'],
    ['239.255.255.255', 'multicast 224/4, last'],
    ['240.0.0.1', 'reserved 240/4'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.10', 'TEST-NET-1'],
    ['198.18.0.1', 'benchmarking'],
    ['::1', 'IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fc00::1', 'unique local fc00::/7'],
    ['fd12:3456:789a::1', 'unique local fd00::/8'],
    ['fe80::1', 'link-local fe80::/10'],
    ['febf::1', 'link-local fe80::/10, last block'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped 10/8'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback in hex'],
    ['::ffff:0:7f00:1', 'IPv4-translated loopback (RFC 2765)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['64:ff9b::10.0.0.1', 'NAT64 of a private IPv4'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback, in hex'],
    ['2001:db8::1', 'documentation'],
    ['2002:c0a8:101::1', '6to4 embedding 192.168.1.1'],
  ])('when %s (%s), then it is not public', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  test.each([
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['93.184.216.34'],
    ['172.15.255.255'], // just below 172.16/12
    ['172.32.0.1'], // just above 172.16/12
    ['100.63.255.255'], // just below 100.64/10
    ['100.128.0.1'], // just above 100.64/10
    ['169.253.255.255'],
    ['223.255.255.254'], // just below 224/4
    ['2606:4700:4700::1111'],
    ['2001:4860:4860::8888'],
    ['::ffff:8.8.8.8'],
  ])('when %s, then it is public', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  test.each([['localhost'], ['example.com'], [''], ['999.1.1.1'], ['[::1]']])(
    'when "%s" is not an IP literal, then it is not public',
    (value) => {
      expect(isPublicAddress(value)).toBe(false);
    },
  );
});

describe('assertAllowedUrl', () => {
  test.each([
    ['http://127.0.0.1/hook'],
    ['https://10.1.2.3:8443/hook'],
    ['http://[::1]:3000/'],
    ['http://[::ffff:127.0.0.1]/'],
    ['http://[fe80::1]/'],
    ['http://169.254.169.254/latest/meta-data/'],
    ['http://0.0.0.0/'],
  ])('when %s and private addresses are not allowed, then it throws BlockedAddressError', (url) => {
    expect(() => {
      assertAllowedUrl(new URL(url), false);
    }).toThrow(BlockedAddressError);
  });

  test('when refused, then the error carries the stable code and names the address', () => {
    try {
      assertAllowedUrl(new URL('http://192.168.0.10/'), false);
      throw new Error('expected a throw');
    } catch (error) {
      expect(error).toBeInstanceOf(BlockedAddressError);
      expect((error as BlockedAddressError).code).toBe('ERR_WEBHOOK_BLOCKED_ADDRESS');
      expect((error as Error).message).toContain('192.168.0.10');
    }
  });

  test.each([['https://8.8.8.8/hook'], ['https://[2606:4700:4700::1111]/'], ['https://shop.example.com/hook']])(
    'when %s (public literal or a name, checked at lookup), then it passes',
    (url) => {
      expect(() => {
        assertAllowedUrl(new URL(url), false);
      }).not.toThrow();
    },
  );

  test.each([['http://127.0.0.1/hook'], ['http://[::1]/'], ['http://10.0.0.1/']])(
    'when %s and allowPrivate is on, then it passes',
    (url) => {
      expect(() => {
        assertAllowedUrl(new URL(url), true);
      }).not.toThrow();
    },
  );

  test.each([['ftp://8.8.8.8/'], ['file:///etc/passwd'], ['gopher://8.8.8.8/']])(
    'when the scheme of %s is not http(s), then it throws even with allowPrivate',
    (url) => {
      expect(() => {
        assertAllowedUrl(new URL(url), true);
      }).toThrow(/scheme/);
    },
  );
});

describe('createGuardedLookup', () => {
  function lookupAll(
    allowPrivate: boolean,
    host: string,
  ): Promise<{ error: (Error & { code?: string }) | null; addresses: unknown }> {
    const lookup = createGuardedLookup(allowPrivate) as unknown as (
      hostname: string,
      options: { all: boolean },
      cb: (err: Error | null, addresses: unknown) => void,
    ) => void;
    return new Promise((resolve) => {
      lookup(host, { all: true }, (error, addresses) => {
        resolve({ error, addresses });
      });
    });
  }

  test('when a name resolves to loopback, then the lookup fails with BlockedAddressError', async () => {
    const { error } = await lookupAll(false, 'localhost');
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect(error?.message).toMatch(/^localhost resolves to .*, which is not public$/);
  });

  test('when allowPrivate is on, then loopback names resolve to their addresses', async () => {
    const { error, addresses } = await lookupAll(true, 'localhost');
    expect(error).toBeNull();
    expect(Array.isArray(addresses) && addresses.length > 0).toBe(true);
  });
});
