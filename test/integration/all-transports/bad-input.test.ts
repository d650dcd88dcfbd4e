import { beforeAll, describe, expect, it } from "vitest";
import {
  DeadlineExceededError,
  ErrAuthFailed,
  ErrAuthNotEnabled,
  ErrCompacted,
  ErrDuplicateKey,
  ErrEmptyKey,
  ErrFutureRev,
  ErrLeaseNotFound,
  ErrLeaseTTLTooLarge,
  ErrPermissionDenied,
  ErrTooManyOps,
  type EtcdError,
  InvalidArgumentError,
  MessageTooLargeError,
  op,
} from "../../../src/index.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { clientFor, enableAuth, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

// Compaction is cluster-wide and auth changes every call, so this file has clusters of its own.
const etcd = useCluster();
let authCluster: EtcdCluster;
beforeAll(async () => {
  authCluster = await startCluster();
  await enableAuth(authCluster, "root-pw", "alice-pw");
  return () => authCluster.close();
});

type Case = [name: string, expected: abstract new (...args: never[]) => EtcdError, provoke: () => Promise<unknown> | unknown];

describe("the catalogue of bad input", () => {
  it("gives each mistake its typed error and leaves the client usable", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    const compacted = (await client.kv.put(`${p}old`, "1")).header.revision;
    await client.kv.put(`${p}old`, "2");
    await client.kv.compact(compacted + 1n);
    await using smallReceiver = clientFor(etcd.cluster, { maxCallRecvMsgSize: 512 });
    await client.kv.put(`${p}big`, new Uint8Array(4096));
    await using root = clientFor(authCluster, { username: "root", password: "root-pw" });
    await using wrongPassword = clientFor(authCluster, { username: "root", password: "wrong" });
    await using alice = clientFor(authCluster, { username: "alice", password: "alice-pw" });
    await using authOnPlainCluster = clientFor(etcd.cluster, { username: "root", password: "root-pw" });

    const cases: Case[] = [
      ["empty key", ErrEmptyKey, () => client.kv.put("", "v")],
      ["value over the send limit", MessageTooLargeError, () => client.kv.put(`${p}k`, new Uint8Array(3 * 1024 * 1024))],
      ["response over the receive limit", MessageTooLargeError, () => smallReceiver.kv.get(`${p}big`)],
      ["invalid sort option", InvalidArgumentError, () => client.kv.get(p, { prefix: true, sort: { target: "size" as never } })],
      ["too many txn ops", ErrTooManyOps, () => client.txn().then(...Array.from({ length: 200 }, (_, i) => op.put(`${p}t${i}`, "v"))).commit()],
      ["duplicate key in txn", ErrDuplicateKey, () => client.txn().then(op.put(`${p}d`, "1"), op.delete(`${p}d`)).commit()],
      ["lease not found", ErrLeaseNotFound, () => client.kv.put(`${p}k`, "v", { lease: 424242n })],
      ["TTL too large", ErrLeaseTTLTooLarge, () => client.lease.grant(1n << 40n)],
      ["future revision", ErrFutureRev, () => client.kv.get(`${p}k`, { revision: 1n << 40n })],
      ["compacted revision", ErrCompacted, () => client.kv.get(`${p}old`, { revision: compacted })],
      ["wrong password", ErrAuthFailed, () => wrongPassword.kv.get("pub/x")],
      ["permission denied", ErrPermissionDenied, () => alice.kv.put("pub/x", "v")],
      ["auth not enabled", ErrAuthNotEnabled, () => authOnPlainCluster.kv.get(`${p}k`)],
      ["bad TLS files", InvalidArgumentError, () => clientFor(etcd.cluster, { endpoints: ["https://127.0.0.1:2379"], tls: { ca: "-----BEGIN CERTIFICATE-----\nnope" } })],
      ["malformed endpoint URL", InvalidArgumentError, () => clientFor(etcd.cluster, { endpoints: ["http://127.0.0.1:notaport"] })],
      ["a signal that is not an AbortSignal", InvalidArgumentError, () => client.kv.get(`${p}k`, { signal: {} as AbortSignal })],
      ["a signal that is a string", InvalidArgumentError, () => client.kv.put(`${p}k`, "v", { signal: "stop" as unknown as AbortSignal })],
      ["a watch signal that is not an AbortSignal", InvalidArgumentError, () => client.watch(`${p}k`, { signal: { aborted: false } as AbortSignal })],
      ["a keepAlive signal that is not an AbortSignal", InvalidArgumentError, () => client.lease.keepAlive(1n, { signal: 5 as unknown as AbortSignal })],
      ["a deadline that is NaN", InvalidArgumentError, () => client.kv.get(`${p}k`, { deadline: Number.NaN })],
      ["a deadline that is an invalid Date", InvalidArgumentError, () => client.kv.get(`${p}k`, { deadline: new Date("never") })],
      ["a deadline that is text", InvalidArgumentError, () => client.kv.get(`${p}k`, { deadline: "soon" as unknown as number })],
      ["a deadline already past", DeadlineExceededError, () => client.kv.put(`${p}k`, "v", { deadline: new Date(Date.now() - 1000) })],
      ["a deadline of no time", DeadlineExceededError, () => client.kv.get(`${p}k`, { deadline: 0 })],
    ];
    for (const [name, expected, provoke] of cases) {
      const err = await (async () => provoke())().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(expected);
      expect((err as Error).message.length, name).toBeGreaterThan(10);
      // Nothing is left broken: the same clients go on working.
      const key = `${p}after/${name}`;
      await client.kv.put(key, "ok");
      expect((await client.kv.get(key)).kvs[0]?.valueString, name).toBe("ok");
    }
    expect((await smallReceiver.kv.get(`${p}big`, { keysOnly: true })).count).toBe(1n);
    expect((await root.kv.get("pub/x")).count).toBe(0n);
    expect((await alice.kv.get("pub/x")).count).toBe(0n);
  });
});
