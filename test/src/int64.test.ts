/**
 * Results keep int64 fields as numbers where that is exact. A server cannot be made to send
 * revisions near 2^53, so the boundaries are checked here on the codec's Longs directly.
 */
import Long from "long";
import { describe, expect, it } from "vitest";
import { storedInt64, storeInt64 } from "../../src/int64.js";
import { KeyValue, ResponseHeader } from "../../src/kv.js";

const signed = (value: bigint) => Long.fromString(value.toString(), false);
const unsigned = (value: bigint) => Long.fromString(value.toString(), true);

describe("storeInt64", () => {
  const exact = [0n, 1n, -1n, 2n ** 30n, 2n ** 53n - 1n, -(2n ** 53n), 2n ** 32n + 7n];
  const beyond = [2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)];

  it("keeps values within ±2^53 as numbers and gives them back exactly", () => {
    for (const value of exact) {
      expect(typeof storeInt64(signed(value)), String(value)).toBe("number");
      expect(storedInt64(storeInt64(signed(value)))).toBe(value);
    }
  });

  it("keeps the Long beyond 2^53, so no bit is lost", () => {
    for (const value of beyond) {
      expect(storeInt64(signed(value)), String(value)).toBeInstanceOf(Long);
      expect(storedInt64(storeInt64(signed(value)))).toBe(value);
    }
  });

  it("reads unsigned Longs with the high bit set as the large values they are", () => {
    for (const value of [2n ** 64n - 1n, 2n ** 63n]) {
      expect(storeInt64(unsigned(value))).toBeInstanceOf(Long);
      expect(BigInt.asUintN(64, storedInt64(storeInt64(unsigned(value))))).toBe(value);
    }
    expect(storedInt64(storeInt64(unsigned(2n ** 53n - 1n)))).toBe(2n ** 53n - 1n);
  });
});

describe("results", () => {
  it("give a key-value's 64-bit fields back exactly, lease IDs of 63 bits included", () => {
    const kv = new KeyValue({
      key: new Uint8Array([1]),
      value: new Uint8Array([2]),
      createRevision: signed(2n ** 53n + 3n),
      modRevision: signed(12n),
      version: signed(1n),
      lease: signed(2n ** 63n - 5n),
    });
    expect([kv.createRevision, kv.modRevision, kv.version, kv.lease]).toEqual([2n ** 53n + 3n, 12n, 1n, 2n ** 63n - 5n]);
  });

  it("give a header's uint64 IDs back exactly, whether the codec marked them signed (the gateway's) or not", () => {
    const max = 2n ** 64n - 1n;
    for (const long of [unsigned, signed]) {
      const bits = (value: bigint) => (long === signed ? signed(BigInt.asIntN(64, value)) : unsigned(value));
      const header = new ResponseHeader({ clusterId: bits(max), memberId: bits(2n ** 63n + 1n), revision: signed(99n), raftTerm: bits(7n) });
      expect([header.clusterId, header.memberId, header.revision, header.raftTerm]).toEqual([max, 2n ** 63n + 1n, 99n, 7n]);
    }
    const noHeader = new ResponseHeader(undefined);
    expect([noHeader.clusterId, noHeader.memberId, noHeader.revision, noHeader.raftTerm]).toEqual([0n, 0n, 0n, 0n]);
  });

  it("read each header's own member ID and revision when consecutive headers differ", () => {
    const pb = (member: bigint, revision: bigint) => ({ clusterId: unsigned(1n), memberId: unsigned(member), revision: signed(revision), raftTerm: unsigned(2n) });
    const [a, b, c] = [new ResponseHeader(pb(5n, 10n)), new ResponseHeader(pb(5n, 11n)), new ResponseHeader(pb(6n, 12n))];
    expect([a.memberId, b.memberId, c.memberId]).toEqual([5n, 5n, 6n]);
    expect([a.revision, b.revision, c.revision]).toEqual([10n, 11n, 12n]);
  });
});
