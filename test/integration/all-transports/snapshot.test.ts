import { execFile } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { ClientMiddleware } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import type { SnapshotOptions, SnapshotProgress } from "../../../src/api/maintenance.js";
import { type Client, InvalidArgumentError, SnapshotIntegrityError } from "../../../src/index.js";
import { EtcdCluster } from "../../harness/cluster.js";
import { resolveEtcdutl } from "../../harness/etcd-binary.js";
import { callCounter, clientFor, etcdAtLeast, startCluster, uniquePrefix, useCluster } from "../../helpers.js";

// Debian's etcd-server package is etcd 3.4 (.ci/run installs it); ETCD_34_BIN can point elsewhere.
const etcd34 = process.env.ETCD_34_BIN ?? (existsSync("/usr/bin/etcd") ? "/usr/bin/etcd" : undefined);
const SHA256_BYTES = 32n;

const etcd = useCluster();
let etcdutl: string;
let dir: string;
beforeAll(async () => {
  // Built from its Go module on first use, like etcd itself.
  etcdutl = await resolveEtcdutl();
  dir = await mkdtemp(join(tmpdir(), "etcd-snapshot-"));
}, 300_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("snapshot", () => {
  it("streams a snapshot to a file that etcdutl restores with the data written before it", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    for (let i = 0; i < 50; i++) await client.kv.put(`${p}${i}`, `value ${i}`.repeat(100));
    const file = join(dir, "backup.db");
    // Readable.from pulls a chunk only when the file has taken the last one: backpressure.
    await pipeline(Readable.from(client.maintenance.snapshot()), createWriteStream(file));
    expect((await stat(file)).size).toBeGreaterThan(50 * 700);

    await using restored = await startCluster(1, [], undefined, { etcdutl, snapshot: file });
    await using reader = clientFor(restored);
    const res = await reader.kv.get(p, { prefix: true });
    expect(res.count).toBe(50n);
    expect(res.kvs.find((kv) => kv.keyString === `${p}7`)?.valueString).toBe("value 7".repeat(100));
  }, 60_000);

  it("refuses a snapshot whose checksum does not match", async () => {
    await expectCorruptionRefused((client) => client.maintenance.snapshot());
  });

  it("reports progress as etcd's responses arrive: received grows to the snapshot's size, remaining falls to 0", async () => {
    const { client } = etcd;
    const p = uniquePrefix();
    // About 160 KB: several of etcd's 32 KiB responses.
    for (let i = 0; i < 40; i++) await client.kv.put(`${p}${i}`, "x".repeat(4000));
    const reports: SnapshotProgress[] = [];
    let handedOut = 0n;
    for await (const chunk of client.maintenance.snapshot({ onProgress: (progress) => reports.push(progress) })) {
      handedOut += BigInt(chunk.length);
      // Reported before handed out: a reader never holds bytes the progress does not cover yet.
      expect(reports.at(-1)!.received).toBeGreaterThanOrEqual(handedOut);
    }
    expectProgressOf(reports, handedOut);
    expect(reports.length).toBeGreaterThanOrEqual(6);
  });

  it("snapshotWithVersion gives the storage version etcd records in the snapshot, then the same checked chunks", async () => {
    const { client } = etcd;
    const running = inject("etcdVersion");
    // etcd records major.minor as its storage version, from 3.6 on.
    const expected = etcdAtLeast("3.6") ? `${running.split(".").slice(0, 2).join(".")}.0` : undefined;
    // A new member records it a moment after the cluster version is decided: wait for that.
    if (expected) await vi.waitFor(async () => expect((await client.maintenance.status()).storageVersion).toBe(expected), { timeout: 15_000, interval: 100 });
    const reports: SnapshotProgress[] = [];
    const snapshot = await client.maintenance.snapshotWithVersion({ onProgress: (progress) => reports.push(progress) });
    expect(snapshot.version).toBe(expected);
    // Known before any chunk is handed out.
    expect(reports).toEqual([]);

    const file = join(dir, "versioned.db");
    await pipeline(Readable.from(snapshot.chunks), createWriteStream(file));
    const size = BigInt((await stat(file)).size);
    expectProgressOf(reports, size);
    if (expected) {
      // The file says the same: etcdutl reads the storage version out of the snapshot's own meta bucket.
      const { stdout } = await promisify(execFile)(etcdutl, ["snapshot", "status", file, "-w", "json"]);
      expect((JSON.parse(stdout) as { version?: string }).version).toBe(expected);
    }
  });

  it("snapshotWithVersion's chunks refuse a snapshot whose checksum does not match", async () => {
    await expectCorruptionRefused(async (client) => (await client.maintenance.snapshotWithVersion()).chunks);
  });

  it("ends the call when the reader stops early: snapshot() on break, snapshotWithVersion()'s chunks read or not", async () => {
    let opened = 0;
    let ended = 0;
    const track: ClientMiddleware = async function* (call, options) {
      if (!call.responseStream) return yield* call.next(call.request, options);
      opened++;
      try {
        return yield* call.next(call.request, options);
      } finally {
        ended++;
      }
    } as ClientMiddleware;
    await using client = clientFor(etcd.cluster, { middleware: { inner: [track] } });
    const unread = await client.maintenance.snapshotWithVersion();
    expect([opened, ended]).toEqual([1, 0]);
    await unread.chunks.return();
    expect(ended).toBe(1);
    expect(await unread.chunks.next()).toEqual({ done: true, value: undefined });

    const partly = await client.maintenance.snapshotWithVersion();
    for await (const chunk of partly.chunks) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect([opened, ended]).toEqual([2, 2]);

    for await (const chunk of client.maintenance.snapshot()) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect([opened, ended]).toEqual([3, 3]);
  });

  it("refuses an onProgress that is not a function, before calling etcd", async () => {
    const counter = callCounter();
    await using client = clientFor(etcd.cluster, { middleware: { inner: [counter.middleware] } });
    const bad = { onProgress: "log" } as unknown as SnapshotOptions;
    const fromSnapshot = await client.maintenance.snapshot(bad).next().catch((e: unknown) => e);
    expect(fromSnapshot).toBeInstanceOf(InvalidArgumentError);
    expect((fromSnapshot as InvalidArgumentError).argument).toBe("snapshot onProgress");
    const fromVersioned = await client.maintenance.snapshotWithVersion(bad).catch((e: unknown) => e);
    expect(fromVersioned).toBeInstanceOf(InvalidArgumentError);
    expect((fromVersioned as InvalidArgumentError).argument).toBe("snapshotWithVersion onProgress");
    expect(counter.calls.Snapshot).toBeUndefined();
  });
});

describe.skipIf(!etcd34)("snapshot from etcd 3.4", () => {
  it("has no version (3.4 does not send one), and progress and checks as usual", async () => {
    await using cluster = await EtcdCluster.start({ binary: etcd34!, noFsync: false });
    await using client = clientFor(cluster);
    await client.kv.put(`${uniquePrefix()}k`, "v".repeat(100_000));
    const reports: SnapshotProgress[] = [];
    const snapshot = await client.maintenance.snapshotWithVersion({ onProgress: (progress) => reports.push(progress) });
    expect(snapshot.version).toBeUndefined();
    let size = 0n;
    for await (const chunk of snapshot.chunks) size += BigInt(chunk.length);
    expectProgressOf(reports, size);
  });
});

/**
 * What every snapshot's progress must be: `received` rising with each response to `size` (the
 * bytes handed out), etcd's `remaining` falling to 0. etcd counts the database only, so until
 * the 32-byte checksum the two add up to its size, and the checksum's own report comes last.
 */
function expectProgressOf(reports: SnapshotProgress[], size: bigint): void {
  expect(reports.length).toBeGreaterThanOrEqual(2);
  for (const [i, report] of reports.entries()) {
    expect(typeof report.received).toBe("bigint");
    expect(typeof report.remaining).toBe("bigint");
    if (i === 0) continue;
    expect(report.received).toBeGreaterThan(reports[i - 1]!.received);
    expect(report.remaining).toBeLessThanOrEqual(reports[i - 1]!.remaining);
  }
  const data = reports.slice(0, -1);
  for (const report of data) expect(report.received + report.remaining).toBe(size - SHA256_BYTES);
  expect(data.at(-1)!.remaining).toBe(0n);
  expect(reports.at(-1)).toEqual({ received: size, remaining: 0n });
}

/** `chunksOf` over a client that flips one byte of the data fails the integrity check, checksum unseen. */
async function expectCorruptionRefused(chunksOf: (client: Client) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>): Promise<void> {
  let flipped = false;
  const corrupt: ClientMiddleware = async function* (call, options) {
    if (!call.responseStream) return yield* call.next(call.request, options);
    for await (const chunk of call.next(call.request, options) as AsyncIterable<{ blob?: Uint8Array }>) {
      if (!flipped && chunk.blob && chunk.blob.length > 100) {
        chunk.blob[50]! ^= 0xff;
        flipped = true;
      }
      yield chunk as never;
    }
  } as ClientMiddleware;
  await using client = clientFor(etcd.cluster, { middleware: { inner: [corrupt] } });
  const chunks: Uint8Array[] = [];
  const err = await (async () => {
    for await (const chunk of await chunksOf(client)) chunks.push(chunk);
  })().catch((e: unknown) => e);
  expect(flipped).toBe(true);
  expect(err).toBeInstanceOf(SnapshotIntegrityError);
  // The checksum itself (the last 32 bytes) was never handed out.
  expect(chunks.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(0);
}
