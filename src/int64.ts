import Long from "long";
import { InvalidArgumentError } from "./errors.js";
import { describe } from "./bytes.js";

/**
 * Every int64 the API returns (revisions, versions, lease IDs, member IDs, counts) is a bigint, so
 * no value ever loses precision. Inputs also take a number when it is a safe integer.
 */
export type Int64 = bigint | number;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

function toBigInt(value: Int64, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  throw new InvalidArgumentError(what, `must be a bigint or a safe integer, got ${describe(value)}`);
}

/** A signed int64 input as the codec's Long, rejecting values outside int64. */
export function toLong(value: Int64, what: string): Long {
  const big = toBigInt(value, what);
  if (big < INT64_MIN || big > INT64_MAX) throw new InvalidArgumentError(what, `is outside the int64 range: ${big}`);
  return Long.fromBits(Number(big & 0xffffffffn), Number((big >> 32n) & 0xffffffffn), false);
}

/** An unsigned 64-bit input (member IDs) as the codec's Long. */
export function toUnsignedLong(value: Int64, what: string): Long {
  const big = toBigInt(value, what);
  if (big < 0n || big > UINT64_MAX) throw new InvalidArgumentError(what, `is outside the uint64 range: ${big}`);
  return Long.fromBits(Number(big & 0xffffffffn), Number(big >> 32n), true);
}

/** A non-negative int64 input, as limits and revisions must be. */
export function toNonNegativeLong(value: Int64, what: string): Long {
  const long = toLong(value, what);
  if (long.isNegative()) throw new InvalidArgumentError(what, `must not be negative, got ${long.toString()}`);
  return long;
}

export function fromLong(value: Long): bigint {
  return value.unsigned ? fromUint64(value) : BigInt.asIntN(64, bits(value));
}

/**
 * A uint64 field (member and cluster IDs, raft terms) as a bigint, whatever the Long's own flag
 * says: ts-proto's JSON reader, used over etcd's gateway, marks every 64-bit value signed.
 */
export function fromUint64(value: Long): bigint {
  return BigInt.asUintN(64, bits(value));
}

/**
 * An int64 as results keep it, which callers may hold by the thousand (each watcher's last event,
 * a large range): a number when that is exact, as revisions and versions are in practice, else the
 * Long. A Long is 48 bytes of heap; a number up to 2^30 costs nothing beyond its field.
 */
export type StoredInt64 = number | Long;

/** A Long whose high word lies in [-2^21, 2^21) lies in [-2^53, 2^53): exact as a number. */
const EXACT_HIGH = 0x200000;

export function storeInt64(value: Long): StoredInt64 {
  const exact = value.unsigned ? value.high >= 0 && value.high < EXACT_HIGH : value.high >= -EXACT_HIGH && value.high < EXACT_HIGH;
  return exact ? value.toNumber() : value;
}

export function storedInt64(value: StoredInt64): bigint {
  return typeof value === "number" ? BigInt(value) : fromLong(value);
}

function bits(value: Long): bigint {
  return (BigInt(value.high) << 32n) | BigInt(value.low >>> 0);
}
