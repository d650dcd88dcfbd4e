import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type KeySelection, op } from "../../src/index.js";
import { useCluster } from "../helpers.js";

// Ranges that run to the end of the keyspace see every key, so these tests own their cluster.
const etcd = useCluster();

// Few distinct bytes, including both extremes, so keys share prefixes and hit 0x00/0xff edges.
const byte = fc.constantFrom(0x00, 0x01, 0x61, 0x7f, 0x80, 0xfe, 0xff);
const key = fc.array(byte, { minLength: 1, maxLength: 4 }).map((b) => new Uint8Array(b));
const queryKey = fc.array(byte, { minLength: 0, maxLength: 3 }).map((b) => new Uint8Array(b));
const selection: fc.Arbitrary<{ start: Uint8Array; sel: KeySelection }> = fc.oneof(
  key.map((start) => ({ start, sel: {} })),
  queryKey.map((start) => ({ start, sel: { prefix: true } })),
  queryKey.map((start) => ({ start, sel: { fromKey: true } })),
  fc.tuple(key, key).map(([start, end]) => ({ start, sel: { end } })),
);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const startsWith = (k: Uint8Array, p: Uint8Array) => p.every((b, i) => k[i] === b);

/** What etcd should select, computed from the documented meaning of each option. */
function modelSelect(keys: Uint8Array[], start: Uint8Array, sel: KeySelection): string[] {
  const matches = (k: Uint8Array) => {
    if (sel.prefix) return startsWith(k, start);
    // etcd reads an end of "\0" as "no end": a from-key range.
    if (sel.fromKey || (sel.end !== undefined && hex(sel.end as Uint8Array) === "00")) return Buffer.compare(k, start) >= 0;
    if (sel.end !== undefined) return Buffer.compare(k, start) >= 0 && Buffer.compare(k, sel.end as Uint8Array) < 0;
    return Buffer.compare(k, start) === 0;
  };
  return keys.filter(matches).sort(Buffer.compare).map(hex);
}

function distinct(keys: Uint8Array[]): Uint8Array[] {
  return [...new Map(keys.map((k) => [hex(k), k])).values()];
}

async function reset(keys: Uint8Array[]): Promise<void> {
  await etcd.client.kv.delete("", { fromKey: true });
  if (keys.length) await etcd.client.txn().then(...keys.map((k) => op.put(k, hex(k)))).commit();
}

describe("range selection over arbitrary byte keys", () => {
  it("get matches the model for keys, ranges, prefixes and from-key", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(key, { maxLength: 12 }).map(distinct), fc.array(selection, { minLength: 1, maxLength: 5 }), async (keys, queries) => {
        await reset(keys);
        for (const { start, sel } of queries) {
          const res = await etcd.client.kv.get(start, sel);
          const got = res.kvs.map((kv) => hex(kv.key));
          expect(got, `get ${hex(start)} ${JSON.stringify(sel, (_, v) => (v instanceof Uint8Array ? hex(v) : v))}`).toEqual(
            modelSelect(keys, start, sel),
          );
          expect(res.kvs.every((kv) => kv.valueString === hex(kv.key))).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("delete removes exactly what the model selects", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(key, { maxLength: 12 }).map(distinct), selection, async (keys, { start, sel }) => {
        await reset(keys);
        const expected = modelSelect(keys, start, sel);
        const res = await etcd.client.kv.delete(start, { ...sel, prevKv: true });
        expect(res.deleted).toBe(BigInt(expected.length));
        expect(res.prevKvs.map((kv) => hex(kv.key)).sort()).toEqual([...expected].sort());
        const left = await etcd.client.kv.get("", { fromKey: true });
        expect(left.kvs.map((kv) => hex(kv.key))).toEqual(
          keys
            .filter((k) => !expected.includes(hex(k)))
            .sort(Buffer.compare)
            .map(hex),
        );
      }),
      { numRuns: 40 },
    );
  });
});
