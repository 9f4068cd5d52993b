import type { Socket } from 'node:net';

/**
 * Reads one JSON object per line from a socket, the framing both the server
 * and the peer protocol use. A line that is not a JSON object, or that grows
 * past `maxBytes` without a newline, ends the connection: neither side ever
 * sends one, so it means the other end is not what we think it is.
 */
export function readJsonLines(socket: Socket, maxBytes: number, onObject: (object: Record<string, unknown>) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      const object = parseObject(line);
      if (!object) {
        socket.destroy();
        return;
      }
      onObject(object);
      // A handler may have closed the connection: read nothing more from it.
      if (socket.destroyed) return;
    }
    if (Buffer.byteLength(buffer) > maxBytes) socket.destroy();
  });
}

function parseObject(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Writes one object as a JSON line. */
export function writeJsonLine(socket: Socket, object: Record<string, unknown>): void {
  if (!socket.destroyed) socket.write(JSON.stringify(object) + '\n');
}
