import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, InvalidArgumentError } from "../../../src/index.js";
import { makeTestPki, type TestPki } from "../../harness/certs.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { etcdAtLeast, etcdTransport, startCluster, uniquePrefix } from "../../helpers.js";

/** The gRPC transport the suite runs on (see vitest.config.ts); fetch cannot reach a unix socket. */
const transport = etcdTransport();

// The harness has members listen on unix:///path, which etcd 3.4 refuses (it wants host:port).
describe.skipIf(!etcdAtLeast("3.5"))("unix socket endpoints", () => {
  let plain: EtcdCluster;
  let secure: EtcdCluster;
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makeTestPki();
    [plain, secure] = await Promise.all([
      startCluster(1, [], undefined, undefined, { unixSockets: true }),
      startCluster(1, [], { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caPem: pki.ca.cert }, undefined, { unixSockets: true }),
    ]);
  });
  afterAll(async () => {
    await plain?.close();
    await secure?.close();
    await pki?.remove();
  });

  it("reaches etcd on unix:// for calls, watches and leases, with credentials allowed as on loopback", async () => {
    const endpoint = plain.members[0]!.socketEndpoint;
    expect(endpoint).toMatch(/^unix:\/\/\//);
    await using client = await Client.connect({ transport, endpoints: [endpoint] });
    expect(client.endpoints).toEqual([`unix:${endpoint.slice("unix://".length)}`]);
    const key = `${uniquePrefix()}k`;
    const watcher = client.watch(key);
    await watcher.ready;
    const lease = await client.lease.grant(30);
    await client.kv.put(key, "over a unix socket", { lease: lease.id });
    expect((await watcher.next()).value?.events[0]?.kv.valueString).toBe("over a unix socket");
    watcher.cancel();
    expect((await client.lease.timeToLive(lease.id, { keys: true })).keys).toHaveLength(1);
    // A socket is as local as loopback: credentials need no opt-in (etcd here has no auth: the
    // config is only checked).
    await new Client({ transport, endpoints: [endpoint], username: "u", password: "p" }).close();
  });

  it("reaches etcd on unixs:// over TLS, checking the certificate for localhost", async () => {
    await using client = await Client.connect({ transport, endpoints: [secure.members[0]!.socketEndpoint], tls: { ca: pki.ca.cert } });
    const key = `${uniquePrefix()}k`;
    await client.kv.put(key, "over TLS on a unix socket");
    expect((await client.kv.get(key)).kvs[0]?.valueString).toBe("over TLS on a unix socket");
  });

  it("refuses unix endpoints where they cannot work: the gateway, and a malformed one", () => {
    expect(() => new Client({ transport: "gateway", endpoints: [plain.members[0]!.socketEndpoint] })).toThrow(/fetch cannot reach a unix socket/);
    expect(() => new Client({ transport, endpoints: ["unix://"] })).toThrow(InvalidArgumentError);
    void new Client({ transport, endpoints: [plain.members[0]!.socketEndpoint, "http://127.0.0.1:2379"] }).close();
  });
});
