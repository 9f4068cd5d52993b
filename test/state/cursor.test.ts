import { describe, expect, it } from 'vitest';
import { Cursor, formatCursor, parseCursor } from '../../state/cursor.js';

/**
 * A session's cursor as clients see it (SPEC section 4): an opaque string the
 * server hands out and takes back, here '<inbox>-<lobby>'. Only strings the
 * server could have handed out parse.
 */
describe('cursor strings', () => {
  const cursors: Cursor[] = [
    new Cursor(0, 0),
    new Cursor(17, 0),
    new Cursor(0, 17),
    new Cursor(3, 1_000_000),
    new Cursor(123_456_789, 42),
    new Cursor(999_999_999_999_999, 999_999_999_999_999),
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

describe('Cursor', () => {
  it('is its string wherever it is turned into one: String(), a template, JSON', () => {
    const c = new Cursor(17, 4);
    expect(String(c)).toBe('17-4');
    expect(`${c}`).toBe('17-4');
    expect(c.toJSON()).toBe('17-4');
    expect(JSON.stringify({ cursor: c })).toBe('{"cursor":"17-4"}');
  });

  it('Cursor.parse is parseCursor, and gives Cursor instances', () => {
    const c = Cursor.parse('5-6');
    expect(c).toBeInstanceOf(Cursor);
    expect(c).toEqual(parseCursor('5-6'));
    expect(c?.equals(new Cursor(5, 6))).toBe(true);
    expect(Cursor.parse('5-')).toBeNull();
    expect(parseCursor('5-6')).toBeInstanceOf(Cursor);
  });

  it('withInbox / withLobby give a new cursor past one stream, the other position kept, the original untouched', () => {
    const c = new Cursor(3, 9);
    const i = c.withInbox(7);
    const l = c.withLobby(12);
    expect(i).toBeInstanceOf(Cursor);
    expect(l).toBeInstanceOf(Cursor);
    expect([i.inbox, i.lobby]).toEqual([7, 9]);
    expect([l.inbox, l.lobby]).toEqual([3, 12]);
    expect([c.inbox, c.lobby]).toEqual([3, 9]);
    expect(c.withInbox(7).withLobby(12).equals(new Cursor(7, 12))).toBe(true);
  });

  it('equals compares both positions', () => {
    const c = new Cursor(1, 2);
    expect(c.equals(new Cursor(1, 2))).toBe(true);
    expect(c.equals(new Cursor(2, 1))).toBe(false);
    expect(c.equals(new Cursor(1, 3))).toBe(false);
    expect(c.equals(new Cursor(0, 2))).toBe(false);
  });
});
