/**
 * etcd-sdk/testing runs where browsers' tests run: bundled for the browser platform (which fails
 * on any import of a Node built-in), it works in a context that has the web platform's globals
 * and none of Node's (no Buffer, process, setImmediate or require).
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { describe, expect, it } from "vitest";

const entry = fileURLToPath(new URL("../../../src/testing.ts", import.meta.url));

/** What a browser page has of what the bundle may use; timers give numbers, as a browser's do. */
function browserGlobals(): Record<string, unknown> {
  return {
    console,
    TextEncoder,
    TextDecoder,
    AbortController,
    AbortSignal,
    Event,
    EventTarget,
    DOMException,
    MessageChannel,
    URL,
    queueMicrotask,
    structuredClone,
    performance,
    setTimeout: (callback: () => void, ms?: number) => Number(setTimeout(callback, ms)),
    clearTimeout: (id: number) => clearTimeout(id),
    setInterval: (callback: () => void, ms?: number) => Number(setInterval(callback, ms)),
    clearInterval: (id: number) => clearInterval(id),
  };
}

describe("etcd-sdk/testing in a browser", () => {
  it("bundles without Node built-ins and serves KV, Txn, Watch and Lease without Node's globals", async () => {
    const bundle = await build({ entryPoints: [entry], bundle: true, format: "iife", globalName: "etcdTesting", platform: "browser", target: "es2022", write: false, logLevel: "silent" });
    const context = vm.createContext(browserGlobals());
    vm.runInContext(bundle.outputFiles[0]!.text, context);
    const scenario = `(async () => {
      const { MemoryEtcd, ManualClock, compare, op } = etcdTesting;
      const clock = new ManualClock();
      const etcd = new MemoryEtcd({ clock });
      const client = etcd.client();
      const watcher = client.watch("k", { prevKv: true });
      await watcher.ready;
      await client.kv.put("k", "1");
      const txn = await client.txn().if(compare.value("k", "=", "1")).then(op.put("k", "2")).commit();
      const { id } = await client.lease.grant(5);
      await client.kv.put("leased", "v", { lease: id });
      clock.advance(5000);
      const events = [];
      for await (const response of watcher) {
        events.push(...response.events.map((e) => e.type + " " + e.kv.valueString + " " + (e.prevKv ? e.prevKv.valueString : "-")));
        if (events.length === 2) break;
      }
      const leased = (await client.kv.get("leased")).count;
      await etcd.close();
      return { events, succeeded: txn.succeeded, leased: String(leased), noNode: typeof Buffer + typeof process + typeof setImmediate };
    })()`;
    const outcome = await (vm.runInContext(scenario, context) as Promise<unknown>);
    expect(outcome).toEqual({ events: ["put 1 -", "put 2 1"], succeeded: true, leased: "0", noNode: "undefinedundefinedundefined" });
  });
});
