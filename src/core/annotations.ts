/**
 * Reads this project's own method options (proto/etcdsdk/annotations.proto) from the generated
 * service definitions, where ts-proto keeps custom options as raw bytes keyed by field tag.
 */

/** Tag (field number << 3 | wire type 2) of `etcdsdk.method_since`, a string. */
const METHOD_SINCE_TAG = (51702 << 3) | 2;

type MethodOptions = { _unknownFields?: Record<number, Uint8Array[]> } | undefined;

const decoder = new TextDecoder();

/** The string in a length-delimited field's bytes (varint length, then UTF-8). */
function lengthDelimited(bytes: Uint8Array): string {
  let length = 0;
  let shift = 0;
  let i = 0;
  for (; i < bytes.length; i++) {
    const byte = bytes[i]!;
    length |= (byte & 0x7f) << shift;
    shift += 7;
    if (byte < 0x80) break;
  }
  return decoder.decode(bytes.subarray(i + 1, i + 1 + length));
}

/** The first etcd version ("3.5") that serves the method, or undefined for etcd 3.4. */
export function methodSince(options: unknown): string | undefined {
  const raw = (options as MethodOptions)?._unknownFields?.[METHOD_SINCE_TAG]?.[0];
  return raw ? lengthDelimited(raw) : undefined;
}

/** Tag of `etcdsdk.http`, the gateway routes of a method ("POST /v3/kv/range"), repeated. */
const HTTP_ROUTE_TAG = (51701 << 3) | 2;

/** The path of the method's first route on etcd's HTTP gateway, or undefined when it has none. */
export function gatewayPath(options: unknown): string | undefined {
  const raw = (options as MethodOptions)?._unknownFields?.[HTTP_ROUTE_TAG]?.[0];
  return raw ? lengthDelimited(raw).replace(/^POST /, "") : undefined;
}
