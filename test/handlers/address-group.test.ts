import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressGroup } from '../../handlers/address-group.js';

/** The key a client address is counted under by the login guards and the TCP per-address cap. */
describe('addressGroup', () => {
  it('an IPv4 address is itself, also IPv4-mapped', () => {
    expect(addressGroup('10.0.0.5')).toBe('10.0.0.5');
    expect(addressGroup('::ffff:10.0.0.5')).toBe('10.0.0.5');
    expect(addressGroup('::FFFF:192.168.1.20')).toBe('192.168.1.20');
  });

  it('an IPv6 address is its /64, whatever way it is written', () => {
    expect(addressGroup('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
    expect(addressGroup('2001:db8:1:3::1')).not.toBe(addressGroup('2001:db8:1:2::1'));
  });

  it('what is not an address is kept as it is', () => {
    for (const text of ['unknown', '1:2:3', '1::2::3', 'zz::1', '1:2:3:4:5:6:7:8:9']) expect(addressGroup(text)).toBe(text);
  });

  it('any two IPv6 addresses that share their first 64 bits share a group, and no others (property)', () => {
    const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
    /** One of the ways an address may be written: full, with leading zeros, or with its longest zero run as `::`. */
    const write = (g: number[], style: number): string => {
      if (style === 0) return g.map((n) => n.toString(16)).join(':');
      if (style === 1) return g.map((n) => n.toString(16).padStart(4, '0').toUpperCase()).join(':');
      let best = [-1, 0];
      for (let k = 0; k < 8; ) {
        if (g[k] !== 0) { k++; continue; }
        let end = k;
        while (end < 8 && g[end] === 0) end++;
        if (end - k > best[1]) best = [k, end - k];
        k = end;
      }
      if (best[1] < 2) return write(g, 0);
      const hex = g.map((n) => n.toString(16));
      return `${hex.slice(0, best[0]).join(':')}::${hex.slice(best[0] + best[1]).join(':')}`;
    };
    fc.assert(
      fc.property(groups, groups, fc.nat(2), fc.nat(2), (a, b, sa, sb) => {
        const ta = write(a, sa);
        const tb = write(b, sb);
        expect(isIPv6(ta) && isIPv6(tb)).toBe(true);
        if (ta.startsWith('::ffff:') || tb.startsWith('::ffff:')) return;
        const samePrefix = a.slice(0, 4).every((n, k) => n === b[k]);
        expect(addressGroup(ta) === addressGroup(tb)).toBe(samePrefix);
        expect(addressGroup(ta)).toBe(addressGroup(write([...a.slice(0, 4), ...b.slice(4)], sb)));
      }),
    );
  });
});
