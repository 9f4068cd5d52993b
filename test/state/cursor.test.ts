import { describe, expect, it } from 'vitest';
import { formatCursor, parseCursor, type Cursor } from '../../state/cursor.js';

/**
 * A session's cursor as clients see it (SPEC section 4): an opaque string the
 * server hands out and takes back, here '<inbox>-<lobby>'. Only strings the
 * server could have handed out parse.
 */
describe('cursor strings', () => {
  const cursors: Cursor[] = [
    { inbox: 0, lobby: 0 },
    { inbox: 17, lobby: 0 },
    { inbox: 0, lobby: 17 },
    { inbox: 3, lobby: 1_000_000 },
    { inbox: 123_456_789, lobby: 42 },
    { inbox: 999_999_999_999_999, lobby: 999_999_999_999_999 },
  ];

  it.each(cursors)('formatCursor / parseCursor round-trip %o', (c) => {
    const text = formatCursor(c);
    expect(text).toBe(`${c.inbox}-${c.lobby}`);
    expect(parseCursor(text)).toEqual(c);
  });

  it('parses positions with leading zeros as their numbers', () => {
    expect(parseCursor('007-0010')).toEqual({ inbox: 7, lobby: 10 });
  });

  it.each([
    '',
    '17',
    '-1-2',
    '1--2',
    '1-2-3',
    'a-b',
    '1-b',
    '1-',
    '-1',
    '1.5-2',
    '+1-2',
    '0x1-2',
    '1e3-2',
    ' 1-2',
    '1-2 ',
    '1-2\n',
    '1_000-2',
    '１-２',
    '1234567890123456-1',
    '1-1234567890123456',
    '9999999999999999-9999999999999999',
  ])('rejects %j', (text) => {
    expect(parseCursor(text)).toBeNull();
  });

  it('accepts parts of up to 15 digits, the most a number holds exactly', () => {
    expect(parseCursor('123456789012345-1')).toEqual({ inbox: 123_456_789_012_345, lobby: 1 });
    expect(parseCursor('1-123456789012345')).toEqual({ inbox: 1, lobby: 123_456_789_012_345 });
  });
});
