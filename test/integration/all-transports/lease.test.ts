import Long from "long";
import { describe, expect, it } from "vitest";
import { ErrLeaseExist, ErrLeaseNotFound, ErrLeaseTTLTooLarge, InvalidArgumentError } from "../../../src/index.js";
import { uniquePrefix, useCluster } from "../../helpers.js";

const etcd = useCluster();

describe("lease", () => {
  it("grants, reports time to live with keys, lists and revokes", async () => {
    const p = uniquePrefix();
    const granted = await etcd.client.lease.grant(60);
    expect(granted.ttl).toBe(60n);
    expect(granted.id).toBeGreaterThan(0n);
    await etcd.client.kv.put(`${p}a`, "1", { lease: granted.id });
    await etcd.client.kv.put(`${p}b`, "2", { lease: granted.id });

    const ttl = await etcd.client.lease.timeToLive(granted.id, { keys: true });
    expect(ttl.id).toBe(granted.id);
    expect(ttl.grantedTtl).toBe(60n);
    expect(ttl.ttl).toBeGreaterThan(50n);
    expect(ttl.keys.map((k) => Buffer.from(k).toString()).sort()).toEqual([`${p}a`, `${p}b`]);
    expect((await etcd.client.lease.timeToLive(granted.id)).keys).toEqual([]);

    expect((await etcd.client.lease.leases()).ids).toContain(granted.id);

    await etcd.client.lease.revoke(granted.id);
    expect((await etcd.client.kv.get(p, { prefix: true })).count).toBe(0n);
    expect((await etcd.client.lease.timeToLive(granted.id)).ttl).toBe(-1n);
    expect((await etcd.client.lease.leases()).ids).not.toContain(granted.id);
  });

  it("grants a chosen ID that uses all 63 bits, exactly", async () => {
    const id = (1n << 63n) - 1n - BigInt(Math.floor(Math.random() * 1e9));
    const granted = await etcd.client.lease.grant(30, { id });
    expect(granted.id).toBe(id);
    const k = `${uniquePrefix()}k`;
    await etcd.client.kv.put(k, "v", { lease: id });
    expect((await etcd.client.kv.get(k)).kvs[0]?.lease).toBe(id);
    await expect(etcd.client.lease.grant(30, { id })).rejects.toBeInstanceOf(ErrLeaseExist);
    await etcd.client.lease.revoke(id);
  });

  it("takes a Long wherever an int64 goes in, as code holding grpc-js or protobufjs values has them", async () => {
    const id = (1n << 63n) - 1n - BigInt(Math.floor(Math.random() * 1e9));
    const asLong = Long.fromString(id.toString());
    const granted = await etcd.client.lease.grant(Long.fromInt(30), { id: asLong });
    expect(granted.id).toBe(id);
    const k = `${uniquePrefix()}k`;
    const { header } = await etcd.client.kv.put(k, "v", { lease: asLong });
    expect((await etcd.client.kv.get(k, { revision: Long.fromString(header.revision.toString()) })).kvs[0]?.lease).toBe(id);
    expect((await etcd.client.lease.timeToLive(asLong)).id).toBe(id);
    await etcd.client.lease.revoke(asLong);
  });

  it("rejects unknown leases, TTLs etcd cannot hold and malformed input", async () => {
    await expect(etcd.client.lease.revoke(123456789)).rejects.toBeInstanceOf(ErrLeaseNotFound);
    await expect(etcd.client.kv.put(`${uniquePrefix()}k`, "v", { lease: 987654321n })).rejects.toBeInstanceOf(ErrLeaseNotFound);
    await expect(etcd.client.lease.grant(10_000_000_000)).rejects.toBeInstanceOf(ErrLeaseTTLTooLarge);
    await expect(etcd.client.lease.grant(-1)).rejects.toThrow(InvalidArgumentError);
    await expect(etcd.client.lease.revoke("7" as never)).rejects.toThrow(/lease revoke id must be a bigint or a safe integer/);
  });
});
