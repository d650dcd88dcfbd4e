/**
 * Whether an error code that Node gives a failed connection is a TLS failure: OpenSSL's
 * certificate verification results (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED,
 * DEPTH_ZERO_SELF_SIGNED_CERT, ...), Node's host name check (ERR_TLS_CERT_ALTNAME_INVALID) and
 * the alerts a server sends in the handshake (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED, ...).
 */
export function isTlsErrorCode(code: unknown): boolean {
  return typeof code === "string" && (/^ERR_(SSL|TLS)_/.test(code) || /CERT|CRL|^UNABLE_TO_|^HOSTNAME_MISMATCH$|^INVALID_(CA|PURPOSE)$|^PATH_LENGTH_EXCEEDED$/.test(code));
}
