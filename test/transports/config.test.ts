import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../entries/args.js';
import { parseCredentials } from '../../entries/credentials.js';
import { TrustedProxies } from '../../transports/addresses.js';
import { parseProxyV2 } from '../../transports/proxy-protocol.js';

describe('server arguments', () => {
  it('has the defaults of SPEC section 7', () => {
    const o = parseArgs([]);
    expect(o).toMatchObject({ port: 4000, httpPort: 8080, credentials: 'credentials.txt', redis: '' });
    expect(o !== 'help' && [o.config.blockDuration, o.config.timeout, o.config.commandRate, o.config.loginRate]).toEqual([60, 120, 20, 10]);
  });

  it('takes the assignment positional form and the flags, flags over environment', () => {
    const o = parseArgs(['5000', '3', '4', '--http-port', '5001', '--credentials=other.txt', '--command-rate', '0'], {
      REDIS_URL: 'redis://127.0.0.1:6379',
      IM_COMMAND_RATE: '7',
      IM_LOGIN_RATE: '0',
    });
    expect(o).toMatchObject({ port: 5000, httpPort: 5001, credentials: 'other.txt', redis: 'redis://127.0.0.1:6379' });
    expect(o !== 'help' && [o.config.blockDuration, o.config.timeout, o.config.commandRate, o.config.loginRate]).toEqual([3, 4, 0, 0]);
  });

  it('takes flags between the positionals, --help and -h anywhere, and the last of a repeated flag', () => {
    const o = parseArgs(['5000', '--http-port', '5001', '3', '--redis=redis://10.0.0.1:6379', '4', '--http-port', '5002']);
    expect(o).toMatchObject({ port: 5000, httpPort: 5002, redis: 'redis://10.0.0.1:6379' });
    expect(o !== 'help' && [o.config.blockDuration, o.config.timeout]).toEqual([3, 4]);
    expect(parseArgs(['5000', '--help'])).toBe('help');
    expect(parseArgs(['-h'])).toBe('help');
  });

  it('takes the login and session settings of issue 21, and refuses what they cannot be', () => {
    const defaults = parseArgs([]);
    expect(defaults !== 'help' && defaults.config).toMatchObject({ sessionLifetime: 86400, addressFailures: 10, rehashPasswords: true });
    expect(defaults).toMatchObject({ passwordCost: 0 });
    const o = parseArgs(['--session-lifetime', '3600', '--password-cost', '32768', '--rehash-passwords', 'no'], { IM_ADDRESS_FAILURES: '0' });
    expect(o !== 'help' && o.config).toMatchObject({ sessionLifetime: 3600, addressFailures: 0, rehashPasswords: false });
    expect(o).toMatchObject({ passwordCost: 32768 });
    expect(parseArgs([], { IM_REHASH_PASSWORDS: 'no' })).toMatchObject({ config: { rehashPasswords: false } });
    expect(() => parseArgs(['--rehash-passwords', 'off'])).toThrow('--rehash-passwords is yes or no, got "off"');
    for (const cost of ['1000', '512', '2097152']) {
      expect(() => parseArgs(['--password-cost', cost])).toThrow(`--password-cost is a power of two from 1024 to 1048576, got ${cost}`);
    }
  });

  it('refuses wrong arguments', () => {
    expect(() => parseArgs(['--redis', '--host', 'x'])).toThrow('--redis needs a value');
    expect(() => parseArgs(['-x'])).toThrow('unknown option -x');
    for (const argv of [['abc'], ['1', '2', '3', '4'], ['--nope'], ['--http-port'], ['--http-port', 'x'], ['70000'], ['4000', '60', '0'], ['-1'], ['--help=yes']]) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(UsageError);
    }
  });
});

describe('credentials file', () => {
  it('tolerates CRLF, trailing blanks and blank lines, and reports malformed lines by number', () => {
    const parsed = parseCredentials('yoda wise\r\nluke sunrise  \n\nno-password\nbad{name} x\nyoda again\nhans falcon');
    expect(parsed.entries).toEqual([
      { user: 'yoda', password: 'wise' },
      { user: 'luke', password: 'sunrise' },
      { user: 'hans', password: 'falcon' },
    ]);
    expect(parsed.problems).toEqual([
      'line 4: expected "username password"',
      'line 5: invalid username "bad{name}" (1-32 of A-Z a-z 0-9 _ . -)',
      'line 6: duplicate user "yoda"',
    ]);
  });
});

describe('client addresses behind a proxy', () => {
  const proxies = new TrustedProxies(['10.0.0.5']);
  it('believes X-Forwarded-For only from a trusted proxy', () => {
    expect(proxies.httpClient('10.0.0.5', '203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.httpClient('::ffff:10.0.0.5', '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.httpClient('192.0.2.9', '203.0.113.7')).toBe('192.0.2.9');
    expect(proxies.httpClient('10.0.0.5', 'garbage')).toBe('10.0.0.5');
  });

  it('parses a PROXY v2 header for IPv4 and a LOCAL one', () => {
    const v4 = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000201cb0071071f90119c', 'hex');
    expect(parseProxyV2(Buffer.concat([v4, Buffer.from('login x y\n')]))).toEqual({ state: 'done', length: 28, address: '192.0.2.1' });
    expect(parseProxyV2(v4.subarray(0, 20))).toEqual({ state: 'incomplete' });
    const local = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
    expect(parseProxyV2(local)).toEqual({ state: 'done', length: 16, address: null });
    expect(parseProxyV2(Buffer.from('login yoda wise\n'))).toEqual({ state: 'invalid' });
  });
});
