/**
 * DNS SRV discovery end to end: a DNS server on 127.0.0.1 answers SRV questions for names under
 * etcd.test with records that point at real etcd clusters; a real dns.promises.Resolver (c-ares,
 * the wire format, Node's parsing) finds them, and a Client built from what it found talks to
 * etcd. Nothing leaves loopback. Runs once (it picks its own transports).
 */
import dns, { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallCanceledError, Client, EndpointError } from "../../src/index.js";
import { DiscoveryError, discoverEndpoints } from "../../src/client/discovery.js";
import { makeTestPki, type TestPki } from "../harness/certs.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { type SrvAnswer, startDnsServer, type TestDnsServer } from "../harness/dns-server.js";
import { startCluster, uniquePrefix } from "../helpers.js";

let pki: TestPki;
let plain: EtcdCluster;
let secure: EtcdCluster;
let server: TestDnsServer;

/** SRV records for a cluster's members, each a priority of its own so the order is known. */
function recordsFor(cluster: EtcdCluster, target = (host: string) => host): SrvAnswer[] {
  return cluster.endpoints.map((endpoint, i) => {
    const [host, port] = endpoint.split(":");
    return { priority: i, weight: 10, port: Number(port), target: target(host!) };
  });
}

/** A real resolver that asks only the test server, and gives up on it soon. */
function testResolver(): Resolver {
  const resolver = new Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([server.address]);
  return resolver;
}

async function roundTrip(client: Client): Promise<string | undefined> {
  const key = `${uniquePrefix("discovery")}k`;
  await client.kv.put(key, "found through DNS");
  return (await client.kv.get(key)).kvs[0]?.valueString;
}

beforeAll(async () => {
  pki = await makeTestPki();
  [plain, secure, server] = await Promise.all([
    startCluster(3),
    startCluster(1, [], { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caPem: pki.ca.cert }),
    startDnsServer(),
  ]);
  server.setZone({
    "_etcd-client._tcp.plain.etcd.test": recordsFor(plain, (host) => `${host}.`),
    // Both kinds under one service name: the https ones must win.
    "_etcd-client-ssl-blue._tcp.etcd.test": recordsFor(secure),
    "_etcd-client-blue._tcp.etcd.test": recordsFor(plain),
    "_etcd-client-ssl._tcp.broken.etcd.test": { rcode: "SERVFAIL" },
    "_etcd-client._tcp.broken.etcd.test": recordsFor(plain),
    "_etcd-client-ssl._tcp.silent.etcd.test": "drop",
    "_etcd-client._tcp.silent.etcd.test": "drop",
  });
});

afterAll(async () => {
  await server?.close();
  await Promise.all([plain?.close(), secure?.close()]);
  await pki?.remove();
});

describe("DNS SRV discovery against a DNS server on loopback", () => {
  it("finds a plain cluster's members in priority order, and a Client built from them works on every transport", async () => {
    const endpoints = await discoverEndpoints("plain.etcd.test", { resolver: testResolver() });
    expect(endpoints).toEqual(plain.endpoints.map((e) => `http://${e}`));
    expect(server.questions).toEqual(expect.arrayContaining(["_etcd-client-ssl._tcp.plain.etcd.test SRV", "_etcd-client._tcp.plain.etcd.test SRV"]));
    for (const transport of ["grpc", "http2", "gateway"] as const) {
      await using client = await Client.connect({ endpoints, transport });
      expect(await roundTrip(client)).toBe("found through DNS");
    }
  });

  it("finds the https endpoints under a service name and talks TLS to them, ignoring the http ones", async () => {
    const endpoints = await discoverEndpoints("etcd.test", { serviceName: "blue", resolver: testResolver() });
    expect(endpoints).toEqual(secure.endpoints.map((e) => `https://${e}`));
    await using client = await Client.connect({ endpoints, tls: { ca: pki.ca.cert } });
    expect(await roundTrip(client)).toBe("found through DNS");
  });

  it("fails with a DiscoveryError naming the names when DNS has none of them (NXDOMAIN)", async () => {
    const err = await discoverEndpoints("nothing.etcd.test", { resolver: testResolver() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryError);
    expect(err).toBeInstanceOf(EndpointError);
    const discovery = err as DiscoveryError;
    expect(discovery.notFound).toBe(true);
    expect(discovery.names).toEqual(["_etcd-client-ssl._tcp.nothing.etcd.test", "_etcd-client._tcp.nothing.etcd.test"]);
    expect(discovery.message).toContain("_etcd-client-ssl._tcp.nothing.etcd.test has no SRV records (ENOTFOUND)");
    expect(discovery.message).toContain("_etcd-client._tcp.nothing.etcd.test has no SRV records (ENOTFOUND)");
  });

  it("fails rather than fall back to http when the https lookup gets SERVFAIL", async () => {
    const err = await discoverEndpoints("broken.etcd.test", { resolver: testResolver() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryError);
    expect((err as DiscoveryError).notFound).toBe(false);
    expect(((err as Error).cause as { code?: string }).code).toBe("ESERVFAIL");
  });

  it("reports a DNS server that never answers as a failed lookup, not as missing records", async () => {
    const err = await discoverEndpoints("silent.etcd.test", { resolver: testResolver() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryError);
    expect((err as DiscoveryError).notFound).toBe(false);
    expect((err as Error).message).toContain("ETIMEOUT");
  });

  it("uses the servers of dns.setServers by default, and an abort cancels its queries at once", async () => {
    const before = dns.getServers();
    dns.setServers([server.address]);
    try {
      expect(await discoverEndpoints("plain.etcd.test")).toEqual(plain.endpoints.map((e) => `http://${e}`));
      const started = Date.now();
      const err = await discoverEndpoints("silent.etcd.test", { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallCanceledError);
      expect(((err as Error).cause as Error).name).toBe("TimeoutError");
      // c-ares on its own would wait out its timeouts and retries, seconds here.
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      dns.setServers(before);
    }
  });
});
