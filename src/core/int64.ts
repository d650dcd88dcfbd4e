import { BinaryReader } from "@bufbuild/protobuf/wire";
import Long from "long";
import { EtcdError, InvalidArgumentError } from "./errors.js";
import { describe } from "./bytes.js";

/**
 * Every int64 the API returns (revisions, versions, lease IDs, member IDs, counts) is a bigint, so
 * no value ever loses precision. Inputs also take a number when it is a safe integer, and a `Long`
 * (the `long` package's, as protobufjs and grpc-js code holds them), signed or unsigned.
 */
export type Int64 = bigint | number | Long;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const EXACT_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const EXACT_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function toBigInt(value: Int64, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  // Long.isLong reads a marker every copy of the package sets, so a Long from another copy (grpc-js's) counts too.
  if (Long.isLong(value)) return BigInt(value.toString());
  throw new InvalidArgumentError(what, `must be a bigint or a safe integer (or a Long), got ${describe(value)}`);
}

/** A signed int64 input, rejecting values outside int64. */
export function toInt64(value: Int64, what: string): bigint {
  const big = toBigInt(value, what);
  if (big < INT64_MIN || big > INT64_MAX) throw new InvalidArgumentError(what, `is outside the int64 range: ${big}`);
  return big;
}

/** An unsigned 64-bit input (member IDs), rejecting values outside uint64. */
export function toUint64(value: Int64, what: string): bigint {
  const big = toBigInt(value, what);
  if (big < 0n || big > UINT64_MAX) throw new InvalidArgumentError(what, `is outside the uint64 range: ${big}`);
  return big;
}

/** A non-negative int64 input, as limits and revisions must be. */
export function toNonNegativeInt64(value: Int64, what: string): bigint {
  const big = toInt64(value, what);
  if (big < 0n) throw new InvalidArgumentError(what, `must not be negative, got ${big}`);
  return big;
}

/**
 * An int64 as results keep it, which callers may hold by the thousand (each watcher's last event,
 * a large range): a number when that is exact, as revisions and versions are in practice, else the
 * bigint. A bigint is a heap object of its own; a number up to 2^30 costs nothing beyond its field.
 */
export type StoredInt64 = number | bigint;

export function storeInt64(value: bigint): StoredInt64 {
  return value >= EXACT_MIN && value <= EXACT_MAX ? Number(value) : value;
}

export function storedInt64(value: StoredInt64): bigint {
  return typeof value === "number" ? BigInt(value) : value;
}

/**
 * The generated codecs take @bufbuild/protobuf's 64-bit values to be bigints. It hands out strings
 * instead where BigInt's DataView methods are missing or BUF_BIGINT_DISABLE=1 turns them off, and
 * every int64 would then be wrong in a different way: a client refuses to start rather than that.
 */
export function assertCodecsReadBigInt(): void {
  if (typeof new BinaryReader(new Uint8Array([1])).int64() === "bigint") return;
  throw new EtcdError("etcd-sdk needs @bufbuild/protobuf to read 64-bit integers as BigInt: it reads them as strings here (BUF_BIGINT_DISABLE=1 is set, or this runtime lacks DataView.getBigInt64)");
}
