/**
 * A tour of the SDK: `npm run tour`. Talks to ETCD_ENDPOINTS (comma-separated) when set, else
 * starts a throwaway single-member etcd on a free loopback port and removes it afterwards.
 */
import { Client, compare, ErrCompacted, ErrEmptyKey, Mutex, op, Session, type WatchObserver } from "../src/index.js";
import { EtcdCluster } from "../test/harness/cluster.js";
import { etcdVersion, resolveEtcdBinary } from "../test/harness/etcd-binary.js";

function section(title: string): void {
  console.log(`\n== ${title}`);
}

async function throwawayCluster(): Promise<EtcdCluster> {
  console.log("ETCD_ENDPOINTS is not set: starting a throwaway etcd (the first run builds it with Go)...");
  const binary = await resolveEtcdBinary();
  const version = await etcdVersion(binary);
  console.log(`etcd ${version} from ${binary}`);
  return EtcdCluster.start({ binary, noFsync: !version.startsWith("3.4.") });
}

async function tour(client: Client, throwaway: boolean): Promise<void> {
  const p = `tour-${Date.now()}/`;

  section("put and get");
  const put = await client.kv.put(`${p}greeting`, "hello, etcd");
  console.log(`put ${p}greeting at revision ${put.header.revision}`);
  const got = await client.kv.get(`${p}greeting`);
  const kv = got.kvs[0]!;
  console.log(`get -> ${JSON.stringify(kv.valueString)} (version ${kv.version}, created at ${kv.createRevision})`);

  section("JSON values and prefixes");
  for (const [name, port] of [["api", 8080], ["web", 3000], ["db", 5432]] as const) {
    await client.kv.put(`${p}services/${name}`, JSON.stringify({ name, port }));
  }
  const services = await client.kv.get(`${p}services/`, { prefix: true, sort: { target: "key", order: "descend" } });
  for (const s of services.kvs) console.log(`${s.keyString} -> port ${s.json<{ port: number }>().port}`);
  const counted = await client.kv.get(`${p}services/`, { prefix: true, countOnly: true });
  console.log(`${counted.count} services; first two keys only:`, (await client.kv.get(`${p}services/`, { prefix: true, limit: 2, keysOnly: true })).kvs.map((k) => k.keyString));

  section("history: reading an older revision");
  const v1 = await client.kv.put(`${p}config`, "v1");
  await client.kv.put(`${p}config`, "v2");
  const old = await client.kv.get(`${p}config`, { revision: v1.header.revision });
  console.log(`now ${(await client.kv.get(`${p}config`)).kvs[0]?.valueString}, at revision ${v1.header.revision} it was ${old.kvs[0]?.valueString}`);

  section("transactions: compare-and-swap");
  const swap = await client
    .txn()
    .if(compare.value(`${p}config`, "=", "v2"))
    .then(op.put(`${p}config`, "v3", { prevKv: true }), op.get(`${p}config`))
    .else(op.get(`${p}config`))
    .commit();
  if (swap.succeeded) {
    const [putResult, getResult] = swap.results;
    console.log(`swapped ${putResult.prevKv?.valueString} -> ${getResult.kvs[0]?.valueString} at revision ${swap.header.revision}`);
  }
  const stale = await client.txn().if(compare.value(`${p}config`, "=", "v2")).then(op.put(`${p}config`, "v4")).else(op.get(`${p}config`)).commit();
  if (!stale.succeeded) console.log(`a second swap from v2 fails: the value is ${stale.results[0].kvs[0]?.valueString}`);
  const create = () => client.txn().if(compare.version(`${p}lock`, "=", 0)).then(op.put(`${p}lock`, "me")).commit();
  console.log(`create-if-absent: first ${(await create()).succeeded}, second ${(await create()).succeeded}`);

  section("watch");
  const watcher = client.watch(`${p}events/`, { prefix: true });
  await watcher.ready;
  await client.kv.put(`${p}events/a`, "1");
  await client.kv.delete(`${p}events/a`);
  let seen = 0;
  for await (const { events } of watcher) {
    for (const e of events) console.log(`${e.type} ${e.kv.keyString} at revision ${e.kv.modRevision}`);
    if ((seen += events.length) >= 2) break;
  }
  // Many watchers: one observer for all of them instead of a loop each (what 10k watchers need).
  const names = ["red", "green", "blue"].map((name) => `${p}colours/${name}`);
  let confirmed = 0;
  let observed = 0;
  const colours = names.map((name) => client.watch(name));
  await new Promise<void>((resolve, reject) => {
    const observer: WatchObserver = {
      ready: () => {
        if (++confirmed === names.length) for (const name of names) void client.kv.put(name, "on").catch(reject);
      },
      next: ({ events }) => {
        for (const e of events) console.log(`observer: ${e.type} ${e.kv.keyString}`);
        if ((observed += events.length) === names.length) resolve();
      },
      error: reject,
    };
    for (const watcher of colours) watcher.subscribe(observer);
  });
  for (const watcher of colours) watcher.cancel();

  section("leases and a lock");
  const lease = await client.lease.grant(5);
  const kept = await client.lease.keepAlive(lease.id);
  await client.kv.put(`${p}ephemeral`, "lives as long as the lease", { lease: lease.id });
  console.log(`lease ${lease.id} kept alive until at least ${new Date(kept.deadline).toISOString()}`);
  kept.close();
  await client.lease.revoke(lease.id);
  console.log(`after revoke: ${(await client.kv.get(`${p}ephemeral`)).count} keys`);
  {
    await using session = await Session.create(client, { ttl: 5 });
    const mutex = new Mutex(session, `${p}lock`);
    await mutex.lock();
    console.log(`holding ${mutex.key} (created at revision ${mutex.revision})`);
    await mutex.unlock();
  }

  section("namespaces");
  const app = client.namespace(`${p}app/`);
  await app.kv.put("setting", "on");
  console.log(`inside the namespace: ${(await app.kv.get("setting")).kvs[0]?.keyString}; outside: ${(await client.kv.get(`${p}app/setting`)).kvs[0]?.keyString}`);

  section("typed errors");
  try {
    await client.kv.put("", "no key");
  } catch (err) {
    if (err instanceof ErrEmptyKey) console.log(`${err.name}: ${err.serverMessage} (gRPC code ${err.code}, from ${err.endpoint})`);
  }
  // Compaction drops history cluster-wide, so the tour only does it to its own throwaway etcd.
  if (throwaway) {
    await client.kv.compact(v1.header.revision + 1n);
    try {
      await client.kv.get(`${p}config`, { revision: v1.header.revision });
    } catch (err) {
      if (err instanceof ErrCompacted) console.log(`${err.name}: revision ${v1.header.revision} was compacted away`);
    }
  }

  section("the same API over etcd's HTTP/JSON gateway (what browsers and edge runtimes use)");
  {
    await using overHttp = await Client.connect({ endpoints: client.endpoints, transport: "gateway" });
    const seen = overHttp.watch(`${p}http/`, { prefix: true });
    await seen.ready;
    await overHttp.kv.put(`${p}http/hello`, "over fetch");
    for await (const { events } of seen) {
      console.log(`watched over HTTP: ${events[0]?.type} ${events[0]?.kv.keyString} = ${events[0]?.kv.valueString}`);
      break;
    }
    console.log(`read back over gRPC: ${(await client.kv.get(`${p}http/hello`)).kvs[0]?.valueString}`);
  }

  section("cleanup");
  const deleted = await client.kv.delete(p, { prefix: true });
  console.log(`deleted ${deleted.deleted} keys under ${p}`);
}

const endpoints = process.env.ETCD_ENDPOINTS?.split(",").map((e) => e.trim()).filter(Boolean);
const cluster = endpoints?.length ? undefined : await throwawayCluster();
try {
  await using client = await Client.connect({ endpoints: endpoints?.length ? endpoints : cluster!.endpoints });
  await tour(client, cluster !== undefined);
} finally {
  await cluster?.close();
}
console.log("\ntour complete");
