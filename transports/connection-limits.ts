import { fail, texts } from '../handlers/replies.js';
import type { Reply } from '../handlers/types.js';
import { addressGroup } from '../handlers/address-group.js';
import type { TrustedProxies } from './addresses.js';

/** Why a new connection is refused (for metrics), and the reply that says so (SPEC section 6). */
export interface Refusal {
  reason: 'max_connections' | 'address_connections';
  reply: Reply;
}

/**
 * The connection caps of one replica, over its TCP and HTTP listeners
 * together (they share the process's open files): at most `max`
 * connections, and `perAddress` from one client address (an IPv6 /64, as
 * the login guards count it). A trusted proxy carries many clients, so its
 * connections are counted toward the total only. 0 = no limit.
 */
export class ConnectionLimits {
  private held = 0;
  private readonly fromAddress = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly perAddress: number,
    private readonly proxies: TrustedProxies,
  ) {}

  /** Takes a place for a connection from `peer`: a function that gives it back when the connection closes, or why not. */
  admit(peer: string): { release: () => void } | { refused: Refusal } {
    const address = addressGroup(peer);
    const counted = !this.proxies.trusts(peer);
    if (this.max > 0 && this.held >= this.max) {
      return { refused: { reason: 'max_connections', reply: fail('', 'too_many_connections', texts.serverFull) } };
    }
    const mine = counted ? (this.fromAddress.get(address) ?? 0) : 0;
    if (this.perAddress > 0 && mine >= this.perAddress) {
      return { refused: { reason: 'address_connections', reply: fail('', 'too_many_connections', texts.addressFull(this.perAddress)) } };
    }
    this.held++;
    if (counted) this.fromAddress.set(address, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held--;
        if (!counted) return;
        const left = (this.fromAddress.get(address) ?? 1) - 1;
        if (left > 0) this.fromAddress.set(address, left);
        else this.fromAddress.delete(address);
      },
    };
  }
}
