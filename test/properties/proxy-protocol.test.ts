import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseProxyV2 } from '../../transports/proxy-protocol.js';

/**
 * PROXY protocol v2 (what HAProxy's `send-proxy-v2` sends before the first
 * byte of a connection), built by hand from the protocol's text: signature,
 * version 2 and command, family and transport, length, addresses, ports,
 * then any TLVs.
 */
const signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function header(command: 'PROXY' | 'LOCAL', family: 'ipv4' | 'ipv6' | 'unspec', body: Buffer): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | (command === 'PROXY' ? 1 : 0);
  fixed[1] = { ipv4: 0x11, ipv6: 0x21, unspec: 0x00 }[family];
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([signature, fixed, body]);
}

function ports(source: number, destination: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(source, 0);
  b.writeUInt16BE(destination, 2);
  return b;
}

/** An IPv6 address as eight groups, and its bytes. */
const ipv6Groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
const groupBytes = (groups: number[]) => Buffer.concat(groups.map((g) => Buffer.from([g >> 8, g & 0xff])));
/** The eight groups an IPv6 address in any of its textual forms stands for. */
function groupsOf(address: string): number[] {
  expect(isIPv6(address), address).toBe(true);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === null ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => parseInt(g, 16));
}

const port = fc.integer({ min: 0, max: 0xffff });
/** TLVs and padding after the addresses: the length covers them and the parser skips them. */
const tlvs = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));

const validHeader = fc.oneof(
  fc.tuple(fc.ipV4(), fc.ipV4(), port, port, tlvs).map(([src, dst, sp, dp, extra]) => ({
    bytes: header('PROXY', 'ipv4', Buffer.concat([Buffer.from(src.split('.').map(Number)), Buffer.from(dst.split('.').map(Number)), ports(sp, dp), extra])),
    family: 'ipv4' as const,
    source: src,
  })),
  fc.tuple(ipv6Groups, ipv6Groups, port, port, tlvs).map(([src, dst, sp, dp, extra]) => ({
    bytes: header('PROXY', 'ipv6', Buffer.concat([groupBytes(src), groupBytes(dst), ports(sp, dp), extra])),
    family: 'ipv6' as const,
    source: src.map((g) => g.toString(16)).join(':'),
  })),
  tlvs.map((extra) => ({ bytes: header('LOCAL', 'unspec', extra), family: 'local' as const, source: null })),
);

describe('PROXY protocol v2 parser (properties)', () => {
  it('a header from any IPv4 or IPv6 source parses back to that source, its length being the whole header', () => {
    fc.assert(
      fc.property(validHeader, fc.uint8Array({ maxLength: 30 }), ({ bytes, family, source }, after) => {
        const parsed = parseProxyV2(Buffer.concat([bytes, after]));
        expect(parsed).toMatchObject({ state: 'done', length: bytes.length });
        const address = (parsed as { address: string | null }).address;
        if (family === 'ipv4') expect(address).toBe(source);
        else if (family === 'ipv6') expect(groupsOf(address!)).toEqual(groupsOf(source!));
        else expect(address).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('writes IPv6 sources as the socket layer does: zeros compressed, IPv4-mapped as a dotted quad', () => {
    const parse = (groups: number[]) => parseProxyV2(header('PROXY', 'ipv6', Buffer.concat([groupBytes(groups), groupBytes(groups), ports(1, 2)])));
    expect(parse([0, 0, 0, 0, 0, 0, 0, 0])).toMatchObject({ address: '::' });
    expect(parse([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])).toMatchObject({ address: '2001:db8::1' });
    expect(parse([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201])).toMatchObject({ address: '192.0.2.1' });
  });

  it('every proper prefix of a valid header is incomplete', () => {
    fc.assert(
      fc.property(
        validHeader.chain(({ bytes }) => fc.tuple(fc.constant(bytes), fc.integer({ min: 0, max: bytes.length - 1 }))),
        ([bytes, cut]) => {
          expect(parseProxyV2(bytes.subarray(0, cut))).toEqual({ state: 'incomplete' });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes never throw, and what does not start with the signature is invalid', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
          // The signature then anything: lengths and families that do not fit.
          fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.concat([signature, Buffer.from(a)])),
        ),
        (bytes) => {
          const parsed = parseProxyV2(bytes);
          expect(['incomplete', 'invalid', 'done']).toContain(parsed.state);
          const seen = Math.min(bytes.length, signature.length);
          if (!bytes.subarray(0, seen).equals(signature.subarray(0, seen))) expect(parsed).toEqual({ state: 'invalid' });
          if (parsed.state === 'done') expect(parsed.length).toBeLessThanOrEqual(bytes.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
