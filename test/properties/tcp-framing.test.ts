import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../handlers/registry.js';
import { fail, texts } from '../../handlers/replies.js';
import type { Reply } from '../../handlers/types.js';
import { startTestReplica } from '../support/replica.js';
import { TcpClient } from '../support/tcp-client.js';

/**
 * TCP line framing (SPEC section 4 and 6): whatever pieces the bytes arrive
 * in, each line up to a newline is one command, answered in order: a line
 * over the limit gets too_long, invalid UTF-8 invalid_command, a trailing
 * CR is dropped, and everything else is what the command parser says.
 */
const maxLineBytes = 64;
let plain: Awaited<ReturnType<typeof startTestReplica>>;
let behindProxy: Awaited<ReturnType<typeof startTestReplica>>;

beforeAll(async () => {
  const config = { maxLineBytes, commandRate: 0, loginRate: 0 };
  plain = await startTestReplica(config);
  behindProxy = await startTestReplica(config, { trustProxy: ['127.0.0.1'] });
});

afterAll(async () => {
  await plain?.replica.close();
  await behindProxy?.replica.close();
});

/** A line's bytes, without its newline. Logins are left out: three failed ones close the connection. */
const lineBytes = fc
  .oneof(
    fc.constantFrom('ping', 'whoelse', 'message luke hi', 'dance', '', 'broadcast', 'resume', 'resume yoda:x', 'login', 'whoelsesince 5').map((s) => Buffer.from(s)),
    fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 90 }).map((a) => Buffer.from(a)),
    fc.integer({ min: maxLineBytes - 3, max: maxLineBytes + 3 }).map((n) => Buffer.from('x'.repeat(n))),
  )
  .map((b) => Buffer.from(b.filter((byte) => byte !== 0x0a)))
  .chain((b) => fc.constantFrom(b, Buffer.concat([b, Buffer.from('\r')])))
  .filter((b) => !b.toString('latin1').startsWith('login '));

/** The reply a line gets, from the framing rules and the command parser, independent of any socket. */
async function expectedReply(ctx: typeof plain.ctx, address: string, bytes: Buffer): Promise<Reply | { type: 'pong' }> {
  if (bytes.length > maxLineBytes) return fail('', 'too_long', texts.lineTooLong(maxLineBytes));
  let line: string;
  try {
    line = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('', 'invalid_command', texts.invalidCharacters);
  }
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (line === 'ping') return { type: 'pong' };
  return dispatch(ctx, { address }, line);
}

/** The bytes cut at arbitrary points (some pieces may be empty). */
function cut(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of [...at, bytes.length]) {
    pieces.push(bytes.subarray(start, p));
    start = p;
  }
  return pieces;
}

/** Sends each piece as a write of its own, letting the server read in between. */
async function sendInPieces(client: TcpClient, pieces: Buffer[]): Promise<void> {
  for (const piece of pieces) {
    await new Promise<void>((resolve, reject) => client.socket.write(piece, (err) => (err ? reject(err) : resolve())));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * What the server answers to the pieces, then to a `ping` sent after them:
 * a line split in two or two lines run together would show before its pong.
 */
async function replies(port: number, pieces: Buffer[], count: number): Promise<Record<string, unknown>[]> {
  const client = await TcpClient.open(port);
  try {
    await sendInPieces(client, [...pieces, Buffer.from('ping\n')]);
    await client.waitFor(() => true, 10_000, count);
    return client.received.slice(0, count + 1);
  } finally {
    client.close();
  }
}

describe('TCP line framing (properties)', () => {
  it('any bytes cut into any pieces get the replies of their lines, one each, in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(lineBytes, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), async (lines, points) => {
        const bytes = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
        const expected = [];
        for (const l of lines) expected.push(await expectedReply(plain.ctx, '127.0.0.1', l));
        expect(await replies(plain.replica.tcpPort, cut(bytes, points), lines.length)).toEqual([...expected, { type: 'pong' }]);
      }),
      { numRuns: 25 },
    );
  });

  it('from a trusted proxy, a PROXY v2 header cut anywhere is taken off, and the lines after it are answered the same', async () => {
    // From 192.0.2.1:8080 to 203.0.113.7:4000.
    const header = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000201cb0071071f900fa0', 'hex');
    await fc.assert(
      fc.asyncProperty(fc.array(lineBytes, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), async (lines, points) => {
        const bytes = Buffer.concat([header, ...lines.flatMap((l) => [l, Buffer.from('\n')])]);
        const expected = [];
        for (const l of lines) expected.push(await expectedReply(behindProxy.ctx, '192.0.2.1', l));
        expect(await replies(behindProxy.replica.tcpPort, cut(bytes, points), lines.length)).toEqual([...expected, { type: 'pong' }]);
      }),
      { numRuns: 25 },
    );
  });
});
