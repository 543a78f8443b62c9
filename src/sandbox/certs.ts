import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Development PKI for the demo and the tests: a local CA, the sandbox bank's server certificate
 * (localhost, 127.0.0.1, and `bank`, its compose service) and the shop's client certificate `CN=client` as PEM and PKCS#12,
 * as the reference tutorial's bank hands them out. Made with the `openssl` command line, which
 * every Debian and node image has; nothing here is for production.
 */
export interface DevCertificates {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  clientPfx: string;
  clientPfxPassphrase: string;
  /** A second client certificate from the same CA (CN=intruder), for binding tests. */
  otherClientCert: string;
  otherClientKey: string;
  /** Signing keys for private_key_jwt and signed requests. */
  signingKeyPs256: string;
  signingKeyEs256: string;
}

export const DEV_PFX_PASSPHRASE = 'changeit';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(dir: string, name: string, subject: string, ext: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key.tmp`], dir);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${name}.key.tmp`, '-out', `${name}.key`], dir);
  openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '397',
      '-sha256',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

/** Where each file of the development PKI lives under `dir`. */
function devCertificatePaths(dir: string): DevCertificates {
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'bank.pem'),
    serverKey: join(dir, 'bank.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    clientPfx: join(dir, 'client.p12'),
    clientPfxPassphrase: DEV_PFX_PASSPHRASE,
    otherClientCert: join(dir, 'intruder.pem'),
    otherClientKey: join(dir, 'intruder.key'),
    signingKeyPs256: join(dir, 'signing-ps256.key'),
    signingKeyEs256: join(dir, 'signing-es256.key'),
  };
}

/** A self-signed P-256 CA that may only sign certificates (ca.pem, ca.key). */
function createCertificateAuthority(dir: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key.tmp'], dir);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', 'ca.key.tmp', '-out', 'ca.key'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '825',
      '-sha256',
      '-subj',
      '/CN=ciba-checkout dev CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

/** The bank's server certificate (localhost, bank, loopback IPs) and the two client certificates. */
function issueLeafCertificates(dir: string): void {
  const leaf = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n';
  issue(
    dir,
    'bank',
    '/CN=localhost',
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:bank,IP:127.0.0.1,IP:::1\n`,
  );
  issue(dir, 'client', '/CN=client', `${leaf}extendedKeyUsage=clientAuth\n`);
  issue(dir, 'intruder', '/CN=intruder', `${leaf}extendedKeyUsage=clientAuth\n`);
}

/** client.p12 with the CA, as the reference tutorial's bank hands a client its certificate. */
function exportClientPkcs12(dir: string): void {
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      'client.pem',
      '-inkey',
      'client.key',
      '-certfile',
      'ca.pem',
      '-out',
      'client.p12',
      '-passout',
      `pass:${DEV_PFX_PASSPHRASE}`,
    ],
    dir,
  );
}

/** Creates the files under `dir` unless they are already there; returns their paths. */
export function ensureDevCertificates(dir: string): DevCertificates {
  const paths = devCertificatePaths(dir);
  // The signing keys are made last: when they exist, everything before them does too.
  if (existsSync(paths.signingKeyEs256)) return paths;
  mkdirSync(dir, { recursive: true });
  createCertificateAuthority(dir);
  issueLeafCertificates(dir);
  exportClientPkcs12(dir);
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'signing-ps256.key'], dir);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'signing-es256.key'], dir);
  return paths;
}
