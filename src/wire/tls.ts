import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import type { ResolvedTls } from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";

function pem(value: string | Uint8Array | undefined): Buffer | null {
  if (value === undefined) return null;
  return typeof value === "string" ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** PEM material of a TLS config, checked now: a bad file is an error at construction, not a failing dial. */
export function tlsMaterial(tls: ResolvedTls | undefined): { ca: Buffer | null; key: Buffer | null; cert: Buffer | null } {
  const [ca, key, cert] = [pem(tls?.ca), pem(tls?.key?.reveal()), pem(tls?.cert)];
  if ((key === null) !== (cert === null)) {
    throw new InvalidArgumentError(key === null ? "tls.key" : "tls.cert", "is needed too: mutual TLS takes a certificate and its key");
  }
  const load = (what: string, check: () => unknown) => {
    try {
      check();
    } catch (err) {
      throw new InvalidArgumentError(what, `could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (ca) load("tls.ca", () => new X509Certificate(ca));
  if (key && cert) load("tls.cert and tls.key", () => createSecureContext({ key, cert }));
  return { ca, key, cert };
}
