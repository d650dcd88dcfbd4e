import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: CertPair;
  /** For 127.0.0.1 and localhost. */
  server: CertPair;
  /** A client certificate signed by `ca`, for mutual TLS. */
  client: CertPair;
  /** A CA that signed none of the above, for mismatch tests. */
  otherCa: CertPair;
  remove(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run("openssl", args, { cwd });
}

async function pair(dir: string, name: string): Promise<CertPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: await readFile(certFile, "utf8"), key: await readFile(keyFile, "utf8") };
}

async function selfSignedCa(dir: string, name: string): Promise<CertPair> {
  await openssl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`],
    dir,
  );
  return pair(dir, name);
}

async function signed(dir: string, name: string, ca: string, extensions: string): Promise<CertPair> {
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
  await openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`],
    dir,
  );
  return pair(dir, name);
}

/** A throwaway CA with server and client certificates, made with the openssl CLI. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), "etcd-sdk-pki-"));
  const ca = await selfSignedCa(dir, "ca");
  const otherCa = await selfSignedCa(dir, "other-ca");
  const server = await signed(dir, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  const client = await signed(dir, "client", "ca", "extendedKeyUsage=clientAuth\n");
  return { dir, ca, server, client, otherCa, remove: () => rm(dir, { recursive: true, force: true }) };
}
