import { createServer } from "node:net";
import { Client, type ClientConfig, compare, type LeaseKeepAlive, op } from "../../src/index.js";
import { type BenchClient, inParallel, revokeAll } from "./common.js";

export type SdkTransport = "grpc" | "gateway";

/**
 * The config for a transport. `transport` is not part of ClientConfig until the gateway lands,
 * hence the cast: once it is, nothing here changes.
 */
function configFor(endpoints: string[], transport: SdkTransport): ClientConfig {
  return transport === "grpc" ? { endpoints } : ({ endpoints, transport } as ClientConfig);
}

/**
 * Why this SDK cannot use `transport` yet, or undefined when it can. A config that does not know
 * the field ignores it and quietly speaks gRPC, so asking the config is not enough: the probe
 * listens on a loopback port and looks at the first bytes a call sends there, the HTTP/2 preface
 * of gRPC or an HTTP/1 request line.
 */
export async function unsupportedTransport(transport: SdkTransport): Promise<string | undefined> {
  if (transport === "grpc") return undefined;
  let firstBytes = "";
  const server = createServer((socket) => {
    socket.once("data", (chunk: Buffer) => {
      firstBytes ||= chunk.toString("latin1", 0, 16);
      socket.destroy();
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  try {
    const client = new Client({ ...configFor([`http://127.0.0.1:${port}`], transport), dialTimeoutMs: 1000 });
    await client.kv.get("probe", { deadline: 1500 }).catch(() => undefined);
    client.close();
  } catch (err) {
    return `the SDK refuses transport "${transport}": ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    server.close();
  }
  if (firstBytes.startsWith("PRI * HTTP/2.0")) return `ClientConfig does not know transport "${transport}" yet: the client still speaks gRPC`;
  if (firstBytes === "") return `a client with transport "${transport}" sent nothing to the probe`;
  return undefined;
}

export async function connectSdk(endpoints: string[], transport: SdkTransport): Promise<BenchClient> {
  const client = await Client.connect(configFor(endpoints, transport));
  return {
    async put(key, value) {
      await client.kv.put(key, value);
    },
    async get(key, serializable) {
      return (await client.kv.get(key, { serializable })).kvs[0]?.value;
    },
    async casPut(key, value) {
      const result = await client.txn().if(compare.version(key, ">", 0)).then(op.put(key, value)).commit();
      return result.succeeded;
    },
    async watchKeys(keys, onPut) {
      const watchers = keys.map((key) => client.watch(key));
      const loops = watchers.map(async (watcher) => {
        for await (const { events } of watcher) for (const event of events) onPut(event.kv.value);
      });
      await Promise.all(watchers.map((w) => w.ready));
      return {
        async close() {
          for (const watcher of watchers) watcher.cancel();
          await Promise.all(loops);
        },
      };
    },
    async keepAliveLeases(count, ttlSeconds, concurrency) {
      const kept: LeaseKeepAlive[] = [];
      await inParallel(count, concurrency, async () => {
        const { id } = await client.lease.grant(ttlSeconds);
        kept.push(await client.lease.keepAlive(id));
      });
      return {
        async close() {
          for (const lease of kept) lease.close();
          return revokeAll(kept.length, concurrency, (i) => client.lease.revoke(kept[i]!.id));
        },
      };
    },
    async close() {
      client.close();
    },
  };
}
