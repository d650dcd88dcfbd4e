import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, EndpointError, InvalidArgumentError, TlsError } from "../../../src/index.js";
import { makeTestPki, type TestPki } from "../../harness/certs.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { etcdTransport, startCluster, uniquePrefix } from "../../helpers.js";

/** The gRPC transport the suite runs on (see vitest.config.ts). */
const transport = etcdTransport();

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(async () => {
  await pki?.remove();
});

async function roundTrip(client: Client): Promise<string | undefined> {
  const key = `${uniquePrefix()}k`;
  await client.kv.put(key, "over tls");
  return (await client.kv.get(key)).kvs[0]?.valueString;
}

describe("TLS with a custom CA", () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startCluster(1, [], { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caPem: pki.ca.cert });
    return () => cluster.close();
  });

  it("talks to an https endpoint that a private CA signed", async () => {
    await using client = await Client.connect({ transport, endpoints: [`https://${cluster.endpoints[0]}`], tls: { ca: pki.ca.cert } });
    expect(await roundTrip(client)).toBe("over tls");
    // A bare host:port with a tls config also means TLS.
    await using bare = new Client({ transport, endpoints: cluster.endpoints, tls: { ca: new TextEncoder().encode(pki.ca.cert) } });
    expect(await roundTrip(bare)).toBe("over tls");
  });

  it.each([
    ["its CA did not sign", () => ({ ca: pki.otherCa.cert }), /certificate/i],
    ["signed for another name", () => ({ ca: pki.ca.cert, serverName: "elsewhere.example" }), /altnames|name/i],
  ])("refuses a server %s with a TlsError naming why, at once, on a call and on connect", async (_what, tls, reason) => {
    const config = { transport, endpoints: [`https://${cluster.endpoints[0]}`], tls: tls(), dialTimeoutMs: 5000 };
    const started = Date.now();
    await using client = new Client(config);
    const err = await client.kv.get("k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsError);
    expect(err).toBeInstanceOf(EndpointError);
    expect((err as Error).message).toMatch(reason);
    const refused = await Client.connect(config).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TlsError);
    expect((refused as Error).message).toMatch(reason);
    // Waiting does not mend a certificate: no need to wait out the dial timeout.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("reports plain gRPC against a TLS listener as an unreachable endpoint", async () => {
    await using client = new Client({ transport, endpoints: [`http://${cluster.endpoints[0]}`], dialTimeoutMs: 1000 });
    await expect(client.kv.get("k")).rejects.toBeInstanceOf(EndpointError);
  });
});

describe("mutual TLS", () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startCluster(1, [], {
      certFile: pki.server.certFile,
      keyFile: pki.server.keyFile,
      clientCaFile: pki.ca.certFile,
      caPem: pki.ca.cert,
      clientCertPem: pki.client.cert,
      clientKeyPem: pki.client.key,
    });
    return () => cluster.close();
  });

  it("connects with a client certificate and is refused without one", async () => {
    await using client = new Client({ transport,
      endpoints: [`https://${cluster.endpoints[0]}`],
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
    });
    expect(await roundTrip(client)).toBe("over tls");

    const anonymousConfig = { transport, endpoints: [`https://${cluster.endpoints[0]}`], tls: { ca: pki.ca.cert }, dialTimeoutMs: 5000 };
    const started = Date.now();
    await using anonymous = new Client(anonymousConfig);
    const err = await anonymous.kv.get("k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsError);
    // The server's alert, which names the cause: "certificate required" over TLS 1.3, "bad
    // certificate" from etcd 3.4, which speaks TLS 1.2.
    expect((err as Error).message).toMatch(/certificate required|bad certificate/);
    await expect(Client.connect(anonymousConfig)).rejects.toBeInstanceOf(TlsError);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("bad TLS material", () => {
  it("is refused at construction, naming what is wrong", () => {
    const endpoints = ["https://127.0.0.1:2379"];
    expect(() => new Client({ transport, endpoints, tls: { ca: "not a certificate" } })).toThrow(InvalidArgumentError);
    expect(() => new Client({ transport, endpoints, tls: { ca: "not a certificate" } })).toThrow(/tls.ca could not be loaded/);
    expect(() => new Client({ transport, endpoints, tls: { ca: pki.ca.cert, cert: pki.client.cert } })).toThrow(/tls.key is needed too/);
    expect(() => new Client({ transport, endpoints, tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.server.key } })).toThrow(
      /tls.cert and tls.key could not be loaded/,
    );
  });
});
