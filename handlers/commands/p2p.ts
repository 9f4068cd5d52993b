import { ipv4Bytes, ipv6Groups } from '../ip-address.js';
import { fail, ok, texts } from '../replies.js';
import type { Handler } from '../types.js';

/**
 * p2p [<host>] <port> <fingerprint> (SPEC section 5): the command-line client
 * advertises where it accepts peers, and the SHA-256 fingerprint of the
 * certificate it answers with there. The host defaults to the caller's
 * address as the server sees it. A peer dials what is stored here, so only an
 * address it can dial is taken: never a name (whose lookup would be the
 * dialler's, not the advertiser's), nor an unspecified, multicast or
 * broadcast address.
 */
export const p2p: Handler = async (ctx, args, session, caller) => {
  const [hostText, portText, fingerprint] = args.length === 3 ? args : [caller.address, ...args];
  if (!isFingerprint(fingerprint)) return fail('p2p', 'invalid_listener', texts.listenerFingerprint);
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) return fail('p2p', 'invalid_listener', texts.listenerPort);
  const host = dialable(hostText);
  if (!host) return fail('p2p', 'invalid_listener', texts.listenerHost);
  await ctx.state.setPeerListener(session!.user, session!.token, { host, port, fingerprint });
  return ok('p2p', '', { host, port, fingerprint });
};

/**
 * A certificate's SHA-256 fingerprint in the one form taken: 32 uppercase hex
 * pairs joined by colons, as WebRTC's `a=fingerprint` and Node's
 * `X509Certificate.fingerprint256` write it.
 */
function isFingerprint(text: string): boolean {
  return /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(text);
}

/** `text` as the address a peer would dial (an IPv4-mapped IPv6 address as its IPv4), or null. */
function dialable(text: string): string | null {
  const mapped = /^::ffff:(.+)$/i.exec(text);
  const v4 = ipv4Bytes(mapped ? mapped[1] : text);
  if (v4) {
    // 0.0.0.0/8 ("this host"), multicast, and the reserved block with the broadcast address.
    return v4[0] === 0 || v4[0] >= 224 ? null : v4.join('.');
  }
  const v6 = ipv6Groups(text);
  if (!v6) return null;
  // The unspecified address and multicast (ff00::/8).
  return v6.every((group) => group === 0) || v6[0] >= 0xff00 ? null : text.toLowerCase();
}
