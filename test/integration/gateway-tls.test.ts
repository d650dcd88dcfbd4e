import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, TlsError } from "../../src/index.js";
import { makeTestPki, type TestPki } from "../harness/certs.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { startCluster } from "../helpers.js";

// fetch trusts only the platform's CAs, so a server that a private CA signed is the TLS failure
// the gateway transport meets; it must name it, on a call and on connect, without waiting.
describe("the gateway against a server whose certificate it cannot verify", () => {
  let pki: TestPki;
  let cluster: EtcdCluster;
  beforeAll(async () => {
    pki = await makeTestPki();
    cluster = await startCluster(1, [], { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caPem: pki.ca.cert });
  });
  afterAll(async () => {
    await cluster?.close();
    await pki?.remove();
  });

  it("fails with a TlsError naming why", async () => {
    const config = { transport: "gateway" as const, endpoints: [`https://${cluster.endpoints[0]}`], dialTimeoutMs: 5000 };
    const started = Date.now();
    await using client = new Client(config);
    const err = await client.kv.get("k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsError);
    expect((err as Error).message).toMatch(/certificate/);
    await expect(Client.connect(config)).rejects.toBeInstanceOf(TlsError);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
