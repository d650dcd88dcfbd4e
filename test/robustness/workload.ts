import { setTimeout as sleep } from "node:timers/promises";
import { type BaseClient, compare, type GetResponse, op } from "../../src/index.js";
import type { HistoryRecorder, KvInput, KvOutput } from "./history.js";

/** The keys the workload touches, by name (the round's prefix goes in front). */
export const WORKLOAD_KEYS = ["k0", "k1", "k2"];

export interface WorkloadOptions {
  /** The SDK clients to call through; each gets `workersPerClient` workers and a probe. */
  clients: BaseClient[];
  workersPerClient: number;
  /** The round's key prefix. */
  prefix: string;
  recorder: HistoryRecorder;
  /** Pause between a worker's calls, in ms, so that histories stay small enough to check. */
  thinkMs: number;
}

/** The share of each kind of call, out of 100. */
const MIX: [KvInput["op"] | "serializable-get", number][] = [
  ["put", 30],
  ["get", 25],
  ["serializable-get", 15],
  ["txn", 20],
  ["delete", 10],
];

function pickKind(): KvInput["op"] | "serializable-get" {
  let roll = Math.random() * 100;
  for (const [kind, share] of MIX) {
    roll -= share;
    if (roll < 0) return kind;
  }
  return "put";
}

function readOutput(response: GetResponse): KvOutput {
  const kv = response.kvs[0];
  return kv ? { revision: String(response.header.revision), found: true, value: kv.valueString, modRevision: String(kv.modRevision) } : { revision: String(response.header.revision) };
}

/**
 * A mixed workload of put, get (linearizable and serializable), txn with a compare, and delete on
 * a few keys, each call recorded. Every put writes a value no other put writes, so that a write
 * applied twice, or a read of a value from the wrong moment, shows. Each client also has a probe,
 * a worker that only reads (linearizably): how long its reads stall says how long the client took
 * to move off a faulted member, which the writers cannot tell, as etcd itself holds writes up to
 * its request timeout (7 s by default) when the leader is lost. Runs until stop() and then waits
 * for the calls still in flight.
 */
export class Workload {
  private stopped = false;
  private readonly done: Promise<void>;
  private nextClientId: number;

  constructor(private readonly options: WorkloadOptions) {
    const workers = options.clients.flatMap((client, sdkClient) => Array.from({ length: options.workersPerClient + 1 }, (_, i) => ({ client, sdkClient, probe: i === 0 })));
    this.nextClientId = workers.length;
    this.done = Promise.all(workers.map((w, i) => this.worker(i, w.client, w))).then(() => undefined);
  }

  /** Stops issuing calls; resolves once the calls in flight ended or `graceMs` passed (those are then left running). */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    await Promise.race([this.done, sleep(graceMs)]);
  }

  private async worker(index: number, client: BaseClient, caller: { sdkClient: number; probe: boolean }): Promise<void> {
    const { prefix, recorder, thinkMs } = this.options;
    /** The mod_revision this worker last saw of each key, for its txns' compares (0: absent). */
    const lastSeen = new Map<string, bigint>();
    let id = index;
    let seq = 0;
    while (!this.stopped) {
      const key = WORKLOAD_KEYS[Math.floor(Math.random() * WORKLOAD_KEYS.length)]!;
      const full = `${prefix}${key}`;
      const value = `w${index}.${seq++}`;
      const kind = caller.probe ? "get" : pickKind();
      let input: KvInput;
      let call: () => Promise<KvOutput>;
      switch (kind) {
        case "put":
          input = { op: "put", key, value };
          call = async () => ({ revision: String((await client.kv.put(full, value)).header.revision) });
          break;
        case "get":
        case "serializable-get": {
          const serializable = kind === "serializable-get";
          input = serializable ? { op: "get", key, serializable } : { op: "get", key };
          call = async () => readOutput(await client.kv.get(full, { serializable }));
          break;
        }
        case "delete":
          input = { op: "delete", key };
          call = async () => {
            const response = await client.kv.delete(full);
            return { revision: String(response.header.revision), deleted: String(response.deleted) };
          };
          break;
        case "txn": {
          const expected = lastSeen.get(key) ?? 0n;
          input = { op: "txn", key, expectModRevision: String(expected), value };
          call = async () => {
            const response = await client.txn().if(compare.modRevision(full, "=", expected)).then(op.put(full, value)).else(op.get(full)).commit();
            if (response.succeeded) return { revision: String(response.header.revision), succeeded: true };
            return { ...readOutput(response.results[0]), succeeded: false };
          };
          break;
        }
      }
      const { output, unknown } = await recorder.record(id, caller, input, call);
      // After a call of unknown outcome the worker goes on as a new porcupine client: the old one
      // never returned.
      if (unknown) id = this.nextClientId++;
      if (output) {
        const written = input.op === "put" || (input.op === "txn" && output.succeeded);
        if (written) lastSeen.set(key, BigInt(output.revision));
        else if (input.op === "delete") lastSeen.set(key, 0n);
        else if (output.modRevision !== undefined) lastSeen.set(key, BigInt(output.modRevision));
        else lastSeen.set(key, 0n);
      }
      await sleep(thinkMs);
    }
  }
}
