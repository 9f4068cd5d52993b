import { isUsername } from '../handlers/users.js';

export interface CredentialsFile {
  entries: { user: string; password: string }[];
  /** One message per malformed line, with its line number. */
  problems: string[];
}

/**
 * Parses credentials.txt (SPEC section 1): `username password` per line,
 * single space; CRLF and trailing blanks tolerated, blank lines skipped,
 * malformed lines reported and skipped.
 */
export function parseCredentials(text: string): CredentialsFile {
  const entries: CredentialsFile['entries'] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/[\r\t ]+$/, '');
    if (line === '') return;
    const parts = line.split(' ');
    const where = `line ${index + 1}`;
    if (parts.length !== 2 || parts[1] === '') problems.push(`${where}: expected "username password"`);
    else if (!isUsername(parts[0])) problems.push(`${where}: invalid username "${parts[0]}" (1-32 of A-Z a-z 0-9 _ . -)`);
    else if (entries.some((e) => e.user === parts[0])) problems.push(`${where}: duplicate user "${parts[0]}"`);
    else entries.push({ user: parts[0], password: parts[1] });
  });
  return { entries, problems };
}
