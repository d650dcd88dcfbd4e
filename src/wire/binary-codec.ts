import type { WireMethod } from "./wire.js";

/** A method's binary codec as the gRPC wires take it. */
export interface BinaryCodec {
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Uint8Array) => unknown;
}

const binaryCodecs = new WeakMap<WireMethod, BinaryCodec>();

/** The binary codec of a method, made once per method. */
export function binaryCodec(method: WireMethod): BinaryCodec {
  let codec = binaryCodecs.get(method);
  if (!codec) {
    const { requestType, responseType } = method;
    codec = {
      // Requests come from the API as partial messages, which the encoder needs filled in.
      serialize: (value) => {
        const bytes = requestType.encode(requestType.fromPartial(value as never) as never).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      deserialize: (bytes) => responseType.decode(bytes),
    };
    binaryCodecs.set(method, codec);
  }
  return codec;
}
