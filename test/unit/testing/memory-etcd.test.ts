/**
 * MemoryEtcd itself: its clients, what it refuses to pretend, its options, and its end.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  ClientClosedError,
  EtcdError,
  InvalidArgumentError,
  MemoryEtcd,
  MessageTooLargeError,
  Status,
  TransportError,
  WatchResponse,
} from "../../../src/testing.js";

let etcd: MemoryEtcd | undefined;
afterEach(async () => {
  await etcd?.close();
  etcd = undefined;
});

describe("MemoryEtcd", () => {
  it("shares one store among its clients, each with the API of every entry's client", async () => {
    etcd = new MemoryEtcd();
    const [a, b] = [etcd.client(), etcd.client()];
    const watcher = b.watch("k");
    await watcher.ready;
    await a.kv.put("k", "from a");
    expect((await b.kv.get("k")).kvs[0]?.valueString).toBe("from a");
    const { value } = (await watcher.next()) as IteratorYieldResult<WatchResponse>;
    expect(value.events[0]?.kv.valueString).toBe("from a");
    expect(a.endpoints).toEqual([etcd.endpoint]);
  });

  it("has a write's watch events delivered by the time the write's response arrives", async () => {
    etcd = new MemoryEtcd();
    const client = etcd.client();
    const received: string[] = [];
    const watcher = client.watch("k");
    watcher.subscribe({ next: (r) => received.push(...r.events.map((e) => e.kv.valueString)), error: () => undefined });
    await watcher.ready;
    for (let i = 0; i < 5; i++) {
      await client.kv.put("k", String(i));
      expect(received).toHaveLength(i + 1);
    }
  });

  it.each([
    ["cluster membership", (e: MemoryEtcd) => e.client().cluster.memberList()],
    ["maintenance", (e: MemoryEtcd) => e.client().maintenance.status()],
    ["authentication", (e: MemoryEtcd) => e.client().auth.authStatus()],
    ["etcd's lock service", (e: MemoryEtcd) => e.client().lockService.lock("l", 1)],
    ["etcd's election service", (e: MemoryEtcd) => e.client().electionService.leader("e")],
  ])("refuses %s with a TransportError of code Unimplemented that says so", async (what, call) => {
    etcd = new MemoryEtcd();
    const err = await call(etcd).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe(Status.UNIMPLEMENTED);
    expect((err as TransportError).message).toContain(`the in-memory etcd of etcd-sdk/testing does not do ${what}`);
  });

  it("holds its clients to their message size limits", async () => {
    etcd = new MemoryEtcd();
    const small = etcd.client({ maxCallSendMsgSize: 100, maxCallRecvMsgSize: 200 });
    await expect(small.kv.put("k", "x".repeat(200))).rejects.toBeInstanceOf(MessageTooLargeError);
    expect((await small.kv.get("k")).count).toBe(0n);
    await small.kv.put("k", "x".repeat(80));
    await small.kv.put("j", "x".repeat(80));
    await expect(small.kv.get("", { prefix: true })).rejects.toThrow(/over the receive limit/);
  });

  it("refuses options etcd would refuse, naming them", () => {
    expect(() => new MemoryEtcd({ maxRequestBytes: 0 })).toThrow(InvalidArgumentError);
    expect(() => new MemoryEtcd({ watchProgressNotifyIntervalMs: 1.5 })).toThrow(/watchProgressNotifyIntervalMs must be a positive integer/);
    expect(() => new MemoryEtcd({ clock: {} as never })).toThrow(/clock must have now\(\) and setTimer/);
  });

  it("closes every client it made, and makes none once closed", async () => {
    etcd = new MemoryEtcd();
    const client = etcd.client();
    const watcher = client.watch("k");
    await watcher.ready;
    await etcd.close();
    await expect(client.kv.get("k")).rejects.toBeInstanceOf(ClientClosedError);
    await expect(watcher.next()).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => etcd!.client()).toThrow(EtcdError);
  });
});
