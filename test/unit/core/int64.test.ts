/**
 * Results keep int64 fields as numbers where that is exact. A server cannot be made to send
 * revisions near 2^53, so the boundaries are checked here on the codec's values directly.
 */
import { describe, expect, it } from "vitest";
import { storedInt64, storeInt64, toInt64, toNonNegativeInt64, toUint64 } from "../../../src/core/int64.js";
import { InvalidArgumentError } from "../../../src/core/errors.js";
import { KeyValue, ResponseHeader } from "../../../src/api/kv.js";
import Long from "long";

describe("storeInt64", () => {
  const exact = [0n, 1n, -1n, 2n ** 30n, 2n ** 53n - 1n, -(2n ** 53n - 1n), 2n ** 32n + 7n];
  const beyond = [2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n];

  it("keeps values within ±(2^53-1) as numbers and gives them back exactly", () => {
    for (const value of exact) {
      expect(typeof storeInt64(value), String(value)).toBe("number");
      expect(storedInt64(storeInt64(value))).toBe(value);
    }
  });

  it("keeps the bigint beyond that, so no bit is lost", () => {
    for (const value of beyond) {
      expect(typeof storeInt64(value), String(value)).toBe("bigint");
      expect(storedInt64(storeInt64(value))).toBe(value);
    }
  });
});

describe("int64 inputs", () => {
  it("take bigints and safe integers within range", () => {
    expect(toInt64(2n ** 63n - 1n, "x")).toBe(2n ** 63n - 1n);
    expect(toInt64(-(2n ** 63n), "x")).toBe(-(2n ** 63n));
    expect(toInt64(Number.MAX_SAFE_INTEGER, "x")).toBe(2n ** 53n - 1n);
    expect(toUint64(2n ** 64n - 1n, "x")).toBe(2n ** 64n - 1n);
    expect(toNonNegativeInt64(0, "x")).toBe(0n);
  });

  it("take Long values, signed and unsigned, all 64 bits exact", () => {
    expect(toInt64(Long.fromString("9223372036854775807"), "x")).toBe(2n ** 63n - 1n);
    expect(toInt64(Long.fromString("-9223372036854775808"), "x")).toBe(-(2n ** 63n));
    expect(toUint64(Long.fromString("18446744073709551615", true), "x")).toBe(2n ** 64n - 1n);
    expect(toInt64(Long.fromString("4611686018427387905"), "x")).toBe(2n ** 62n + 1n);
    // A Long as another copy of the package makes it (grpc-js's, protobufjs's): only its fields and marker.
    const foreign = Object.assign(Object.create(null) as object, { low: 1, high: 0x40000000, unsigned: false, __isLong__: true, toString: () => "4611686018427387905" });
    expect(toInt64(foreign as unknown as Long, "x")).toBe(2n ** 62n + 1n);
    expect(() => toNonNegativeInt64(Long.fromInt(-1), "get limit")).toThrow(/get limit must not be negative/);
  });

  it("refuse, naming the field, what the wire cannot carry", () => {
    const cases: [() => unknown, RegExp][] = [
      [() => toInt64(2n ** 63n, "lease id"), /lease id is outside the int64 range/],
      [() => toInt64(2 ** 53, "lease id"), /lease id must be a bigint or a safe integer/],
      [() => toInt64(1.5, "lease id"), /must be a bigint or a safe integer/],
      [() => toUint64(-1n, "member id"), /member id is outside the uint64 range/],
      [() => toUint64(2n ** 64n, "member id"), /outside the uint64 range/],
      [() => toNonNegativeInt64(-1, "get limit"), /get limit must not be negative, got -1/],
    ];
    for (const [call, message] of cases) {
      expect(call).toThrow(InvalidArgumentError);
      expect(call).toThrow(message);
    }
  });
});

describe("results", () => {
  it("give a key-value's 64-bit fields back exactly, lease IDs of 63 bits included", () => {
    const kv = new KeyValue({
      key: new Uint8Array([1]),
      value: new Uint8Array([2]),
      createRevision: 2n ** 53n + 3n,
      modRevision: 12n,
      version: 1n,
      lease: 2n ** 63n - 5n,
    });
    expect([kv.createRevision, kv.modRevision, kv.version, kv.lease]).toEqual([2n ** 53n + 3n, 12n, 1n, 2n ** 63n - 5n]);
  });

  it("give a header's uint64 IDs back exactly", () => {
    const max = 2n ** 64n - 1n;
    const header = new ResponseHeader({ clusterId: max, memberId: 2n ** 63n + 1n, revision: 99n, raftTerm: 7n });
    expect([header.clusterId, header.memberId, header.revision, header.raftTerm]).toEqual([max, 2n ** 63n + 1n, 99n, 7n]);
    const noHeader = new ResponseHeader(undefined);
    expect([noHeader.clusterId, noHeader.memberId, noHeader.revision, noHeader.raftTerm]).toEqual([0n, 0n, 0n, 0n]);
  });

  it("read each header's own member ID and revision when consecutive headers differ", () => {
    const pb = (member: bigint, revision: bigint) => ({ clusterId: 1n, memberId: member, revision, raftTerm: 2n });
    const [a, b, c] = [new ResponseHeader(pb(5n, 10n)), new ResponseHeader(pb(5n, 11n)), new ResponseHeader(pb(6n, 12n))];
    expect([a.memberId, b.memberId, c.memberId]).toEqual([5n, 5n, 6n]);
    expect([a.revision, b.revision, c.revision]).toEqual([10n, 11n, 12n]);
  });
});

describe("a runtime where @bufbuild/protobuf reads int64 as strings", () => {
  it("refuses to start a client, saying why", async () => {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const script = `
      const { Client } = await import(${JSON.stringify(new URL("../../../src/index.ts", import.meta.url).href)});
      try { await Client.connect({ endpoints: ["127.0.0.1:1"] }); console.log("started"); }
      catch (err) { console.log(err.name + ": " + err.message); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, BUF_BIGINT_DISABLE: "1" },
    });
    expect(stdout).toMatch(/^EtcdError: etcd-sdk needs @bufbuild\/protobuf to read 64-bit integers as BigInt: .*BUF_BIGINT_DISABLE=1/);
  });
});
