// tsyringe, which @peculiar/x509 builds on, needs the Reflect metadata API
// in place before it loads.
import 'reflect-metadata';
import { X509CertificateGenerator } from '@peculiar/x509';
import { createHash, createPrivateKey, randomBytes, timingSafeEqual, webcrypto, type X509Certificate } from 'node:crypto';

/**
 * The client's identity on peer connections (SPEC section 5, point 5): an
 * ECDSA P-256 key pair and a self-signed certificate, made in memory for one
 * user of one process and never written anywhere. Peers trust it by its
 * SHA-256 fingerprint, which the server relays, not by any authority: the
 * certificate's names and dates carry no trust, so they say nothing about
 * the user.
 */
export interface PeerIdentity {
  /** PKCS#8 private key, PEM. */
  key: string;
  /** The self-signed certificate, PEM. */
  cert: string;
  /** SHA-256 of the certificate's DER bytes, as 32 uppercase hex pairs joined by colons. */
  fingerprint: string;
}

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const dayMs = 24 * 60 * 60 * 1000;

/**
 * Makes a new key pair and certificate. node:crypto makes and signs with
 * keys but cannot build a certificate, so @peculiar/x509 (over Node's own
 * WebCrypto) writes the X.509 structure.
 */
export async function makePeerIdentity(): Promise<PeerIdentity> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const certificate = await X509CertificateGenerator.createSelfSigned(
    {
      // Positive (a leading zero bit) and unique, as RFC 5280 asks.
      serialNumber: '01' + randomBytes(15).toString('hex'),
      name: 'CN=im peer',
      // A peer's clock may be off; the dates are not checked (the fingerprint is).
      notBefore: new Date(now - dayMs),
      notAfter: new Date(now + 365 * dayMs),
      signingAlgorithm: algorithm,
      keys,
    },
    webcrypto as Parameters<typeof X509CertificateGenerator.createSelfSigned>[1],
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  const der = Buffer.from(certificate.rawData);
  return { key, cert: certificate.toString('pem'), fingerprint: fingerprintText(sha256(der)) };
}

/**
 * Whether `certificate` is the one `fingerprint` names. The digests are
 * compared in constant time, so how long a refusal takes says nothing about
 * how close a forged certificate came.
 */
export function matchesFingerprint(certificate: X509Certificate | undefined, fingerprint: string): boolean {
  if (!certificate) return false;
  return sameBytes(Buffer.from(fingerprint.replace(/:/g, ''), 'hex'), sha256(certificate.raw));
}

/** Whether two secrets' bytes are equal, compared in constant time (a length differs at once). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function fingerprintText(digest: Buffer): string {
  return digest.toString('hex').toUpperCase().match(/../g)!.join(':');
}
