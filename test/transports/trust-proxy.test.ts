import { describe, expect, it } from 'vitest';
import { parseProxyRange, TrustedProxies } from '../../transports/addresses.js';
import { parseArgs, UsageError } from '../../entries/args.js';

describe('--trust-proxy (SPEC section 7): addresses and CIDR ranges', () => {
  it('parses single addresses and ranges of both families', () => {
    expect(parseProxyRange('10.0.0.5')).toEqual({ address: '10.0.0.5', family: 'ipv4', prefix: null });
    expect(parseProxyRange(' 10.0.0.0/24 ')).toEqual({ address: '10.0.0.0', family: 'ipv4', prefix: 24 });
    expect(parseProxyRange('::ffff:10.0.0.5')).toEqual({ address: '10.0.0.5', family: 'ipv4', prefix: null });
    expect(parseProxyRange('fd00::/8')).toEqual({ address: 'fd00::', family: 'ipv6', prefix: 8 });
    expect(parseProxyRange('::1/128')).toEqual({ address: '::1', family: 'ipv6', prefix: 128 });
  });

  it('refuses what is not an address or a range', () => {
    for (const bad of ['', 'localhost', '10.0.0.256', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '/8', '10.0.0.0/ 8']) {
      expect(parseProxyRange(bad), bad).toBeNull();
    }
  });

  it('trusts every address of a range and nothing outside it', () => {
    const proxies = new TrustedProxies(['10.1.0.0/16', '192.0.2.7', 'fd00::/8']);
    expect(proxies.trusts('10.1.0.1')).toBe(true);
    expect(proxies.trusts('10.1.255.254')).toBe(true);
    expect(proxies.trusts('::ffff:10.1.2.3')).toBe(true);
    expect(proxies.trusts('10.2.0.1')).toBe(false);
    expect(proxies.trusts('192.0.2.7')).toBe(true);
    expect(proxies.trusts('192.0.2.8')).toBe(false);
    expect(proxies.trusts('fd12:3456::1')).toBe(true);
    expect(proxies.trusts('fe80::1')).toBe(false);
    expect(proxies.trusts('unknown')).toBe(false);
  });

  it('takes the right-most X-Forwarded-For hop outside the trusted ranges', () => {
    const proxies = new TrustedProxies(['10.0.0.0/8']);
    expect(proxies.httpClient('10.0.0.9', '203.0.113.7, 10.3.3.3')).toBe('203.0.113.7');
    expect(proxies.httpClient('::ffff:10.200.0.1', '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.httpClient('192.0.2.9', '203.0.113.7')).toBe('192.0.2.9');
  });

  it('is read from the flag and the environment, and a wrong entry is a usage error', () => {
    const o = parseArgs(['--trust-proxy', '10.0.0.0/8, 192.0.2.7'], { IM_TRUST_PROXY: '127.0.0.1' });
    expect(o !== 'help' && o.trustProxy).toEqual(['10.0.0.0/8', '192.0.2.7']);
    const env = parseArgs([], { IM_TRUST_PROXY: 'fd00::/8' });
    expect(env !== 'help' && env.trustProxy).toEqual(['fd00::/8']);
    expect(() => parseArgs(['--trust-proxy', '10.0.0.0/8,proxy.example'])).toThrow(UsageError);
    expect(() => parseArgs([], { IM_TRUST_PROXY: '10.0.0.0/40' })).toThrow(/IM_TRUST_PROXY.*10\.0\.0\.0\/40/);
  });
});
