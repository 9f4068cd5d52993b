import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../handlers/registry.js';
import { statusOf, texts } from '../../handlers/replies.js';
import { Server, type Client } from '../handlers/harness.js';
import { fingerprint } from '../support/fingerprints.js';

/**
 * The command line (SPEC section 3, section 6) for any input: the verb,
 * then arguments separated by single spaces, the message text being the
 * rest of the line; control characters refused; every line answered.
 */
const errorCodes = Object.keys(statusOf);
const verbs = commands.map((row) => row.verb);
const controls = [...Array.from({ length: 0x20 }, (_v, k) => k), ...Array.from({ length: 0x21 }, (_v, k) => 0x7f + k)].map((c) => String.fromCharCode(c));
const control = fc.constantFrom(...controls);
/** Text with no control character: what a user may type. */
const printable = (min = 0, max = 40) =>
  fc
    .string({ unit: fc.oneof({ arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }), weight: 3 }, fc.constantFrom(' ', 'é', '🙂', '\u00a0', '\u2028')), minLength: min, maxLength: max })
    .filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s));
/** One argument: no space and no control character. */
const word = printable(1, 12).map((s) => s.replaceAll(' ', '_'));

/** Any line: known verbs with made-up arguments, made-up verbs, arbitrary Unicode, lone surrogates, long lines. */
const anyLine = fc.oneof(
  fc.tuple(fc.constantFrom(...verbs), fc.array(fc.oneof(word, fc.constant(''), fc.constantFrom('luke', 'yoda', 'nobody', '-1', '0', '0-0')), { maxLength: 4 })).map(([verb, args]) => [verb, ...args].join(' ')),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: fc.constantFrom('a', ' ', '\ud800', '\udc00', '\u0000', 'é'), maxLength: 20 }),
  fc.integer({ min: 8000, max: 8300 }).map((n) => `message luke ${'x'.repeat(n)}`),
);

let server: Server;
let yoda: Client;
beforeAll(async () => {
  // No rate limits: every line reaches the parser and its handler.
  server = await Server.start({ commandRate: 0, loginRate: 0 });
  yoda = await server.login('yoda');
  await server.login('luke');
});

describe('command parser (properties)', () => {
  it('any line, logged in or not, gets one reply: ok, or a known error code, with a text and the verb', async () => {
    await fc.assert(
      fc.asyncProperty(anyLine, fc.boolean(), async (line, loggedIn) => {
        // Each line from a caller of its own: a logout among them ends no one else's session.
        const caller = loggedIn ? (await server.login('hans')).caller : server.caller('10.9.0.1');
        try {
          const reply = await server.run(caller, line);
          // ping is answered on its own (SPEC section 4), with nothing else.
          if ((reply as { type: string }).type === 'pong') {
            expect(line.split(' ')[0]).toBe('ping');
            expect(reply).toEqual({ type: 'pong' });
            return;
          }
          expect(reply.type).toBe('reply');
          expect(reply.cmd).toBe(line.split(' ')[0]);
          expect(typeof reply.text).toBe('string');
          if (reply.ok) expect(reply).not.toHaveProperty('error');
          else expect(errorCodes).toContain(reply.error);
        } finally {
          if (loggedIn) await server.run(caller, 'logout');
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a line with a control character, NUL or invalid UTF-8 anywhere is refused before its verb is looked at, and reaches no one', async () => {
    const mark = await server.mark('luke');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('message luke ', 'broadcast ', 'block ', '', 'whoelse'),
        printable(),
        fc.oneof(control, fc.constantFrom('\ud800', '\udfff')),
        printable(),
        async (prefix, before, bad, after) => {
          const reply = await server.run(yoda.caller, `${prefix}${before}${bad}${after}`);
          expect(reply).toMatchObject({ ok: false, error: 'invalid_command', text: texts.invalidCharacters });
        },
      ),
      { numRuns: 200 },
    );
    expect(await server.events('luke', mark)).toEqual([]);
  });

  it('message <user> <text>: the text is the rest of the line, spaces and all, delivered as typed', async () => {
    await fc.assert(
      fc.asyncProperty(printable(1, 60).filter((s) => s.trim() !== ''), async (text) => {
        const mark = await server.mark('luke');
        expect(await server.run(yoda.caller, `message luke ${text}`)).toMatchObject({ ok: true, text: '' });
        expect(await server.events('luke', mark)).toMatchObject([{ type: 'message', from: 'yoda', body: text, text: `yoda: ${text}` }]);
      }),
      { numRuns: 60 },
    );
  });

  it('arguments are separated by single spaces: one more space anywhere before the last argument is a usage error', async () => {
    const rows = commands.filter((row) => !['login', 'resume'].includes(row.verb) && row.synopsis.includes('<'));
    const example: Record<string, string[]> = {
      whoelsesince: ['5'],
      broadcast: ['hi'],
      message: ['luke', 'hi'],
      private: ['luke', 'hi'],
      p2p: ['127.0.0.1', '4501', fingerprint(1)],
    };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...rows), fc.integer({ min: 2, max: 4 }), async (row, spaces) => {
        const args = example[row.verb] ?? ['luke'];
        // `broadcast  hi` keeps its leading space as part of the text: the only argument there is text.
        fc.pre(row.verb !== 'broadcast');
        const line = `${row.verb}${' '.repeat(spaces)}${args.join(' ')}`;
        expect(await server.run(yoda.caller, line), line).toMatchObject({ ok: false, error: 'usage', text: texts.usage(row.synopsis) });
      }),
      { numRuns: 40 },
    );
  });

  it('whoelsesince takes any non-negative integer of up to 15 digits and nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }).map(String), word, fc.integer({ min: -1000, max: -1 }).map(String), fc.constantFrom('1.5', '1e3', '+3', '0x10', ' 5', '5 ')),
        async (seconds) => {
          const reply = await server.run(yoda.caller, `whoelsesince ${seconds}`);
          if (/^\d{1,15}$/.test(seconds)) expect(reply, seconds).toMatchObject({ ok: true, cmd: 'whoelsesince' });
          else expect(reply, seconds).toMatchObject({ ok: false, error: 'usage', text: 'Usage: whoelsesince <seconds>' });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('p2p takes a SHA-256 fingerprint in its one form only: 32 uppercase hex pairs joined by colons', async () => {
    const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0'));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          digest.map((d) => hex(d).join(':').toUpperCase()),
          digest.map((d) => hex(d).join(':').toLowerCase()),
          digest.map((d) => hex(d).join('').toUpperCase()),
          fc.uint8Array({ minLength: 1, maxLength: 48 }).map((d) => hex(d).join(':').toUpperCase()),
          word,
        ),
        async (fp) => {
          const reply = await server.run(yoda.caller, `p2p 127.0.0.1 4501 ${fp}`);
          if (/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(fp)) expect(reply, fp).toMatchObject({ ok: true, fingerprint: fp });
          else expect(reply, fp).toMatchObject({ ok: false, error: 'invalid_listener' });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('p2p takes an IPv4 host a peer can dial: 1.0.0.0 to 223.255.255.255, written without leading zeros', async () => {
    const octet = fc.integer({ min: 0, max: 300 });
    await fc.assert(
      fc.asyncProperty(fc.tuple(octet, octet, octet, octet), async (octets) => {
        const host = octets.join('.');
        const reply = await server.run(yoda.caller, `p2p ${host} 4501 ${fingerprint(2)}`);
        if (octets.every((o) => o <= 255) && octets[0] >= 1 && octets[0] <= 223) expect(reply, host).toMatchObject({ ok: true, host });
        else expect(reply, host).toMatchObject({ ok: false, error: 'invalid_listener' });
      }),
      { numRuns: 100 },
    );
  });
});
