import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  dir: string;
  /** The private CA's certificate: what a client passes as --ca. */
  caFile: string;
  ca: string;
  /** Server certificate, then its key, in one PEM: HAProxy's `crt`. */
  serverPem: string;
  remove(): void;
}

const OPENSSL = process.env.OPENSSL ?? '/usr/bin/openssl';

/**
 * A throwaway private CA and a server certificate it signed for 127.0.0.1
 * and localhost, made with the openssl command line (node:crypto can sign,
 * but cannot build a certificate). Valid for two days; removed by remove().
 */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'im-tls-'));
  const path = (name: string) => join(dir, name);
  const run = (args: string[]) => {
    try {
      execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`openssl ${args[0]} failed (is the openssl command installed?): ${e.stderr?.toString() ?? e.message}`);
    }
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    run(['req', '-x509', ...key, '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  writeFileSync(path('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const server = (name: string, signer: string) => {
    run(['req', ...key, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', '/CN=localhost']);
    run(['x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${signer}.pem`), '-CAkey', path(`${signer}.key`),
      '-CAcreateserial', '-out', path(`${name}.crt`), '-days', '2', '-extfile', path('server.ext')]);
    writeFileSync(path(`${name}.pem`), readFileSync(path(`${name}.crt`), 'utf8') + readFileSync(path(`${name}.key`), 'utf8'));
  };
  ca('test-ca');
  server('server', 'test-ca');
  return {
    dir,
    caFile: path('test-ca.pem'),
    ca: readFileSync(path('test-ca.pem'), 'utf8'),
    serverPem: path('server.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
