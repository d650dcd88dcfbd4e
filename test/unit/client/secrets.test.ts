import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../../../src/client/client.js";
import { Client as WebClient } from "../../../src/client/web-client.js";
import { resolveConfig } from "../../../src/core/config.js";
import { InvalidArgumentError } from "../../../src/core/errors.js";
import { Secret } from "../../../src/core/secret.js";
import { makeTestPki, type TestPki } from "../../harness/certs.js";
import { ScriptedClient } from "../support/scripted-wire.js";

/*
 * Where secrets may show up without anyone meaning to print them: console.log or JSON.stringify of
 * a client or its config, an error that repeats a bad endpoint, a connection that silently drops
 * TLS. Nothing here needs etcd: the client is made, inspected and closed without connecting
 * (test/integration/all-transports/auth.test.ts does the same with a client that authenticated).
 */

const shownEverywhere = (value: unknown) => [inspect(value, { depth: 20, showHidden: true }), JSON.stringify(value), String(value)].join("\n");

describe("secrets", () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makeTestPki();
  });
  afterAll(() => pki.remove());

  it("keeps a Secret's value out of inspect, JSON and strings", () => {
    const secret = new Secret("hunter2");
    expect(shownEverywhere({ secret })).not.toContain("hunter2");
    expect(secret.reveal()).toBe("hunter2");
  });

  it.each(["grpc", "http2"] as const)("shows neither password nor TLS key of a %s client", (transport) => {
    const client = new Client({
      endpoints: ["10.0.0.1:2379"],
      transport,
      username: "root",
      password: "pw-5d2e",
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
    });
    try {
      const shown = shownEverywhere(client);
      expect(shown).not.toContain("pw-5d2e");
      expect(shown).not.toContain(pki.client.key.split("\n")[1]!);
      expect(JSON.parse(JSON.stringify(client))).toEqual({ endpoints: ["10.0.0.1:2379"], transport });
      expect(inspect(client)).toMatch(/^Client \{/);
    } finally {
      client.close();
    }
  });

  it("shows no password or key in a resolved config", () => {
    const resolved = resolveConfig({ endpoints: ["https://10.0.0.1:2379"], username: "u", password: "pw-5d2e", tls: { key: pki.client.key, cert: pki.client.cert } });
    const shown = shownEverywhere(resolved);
    expect(shown).not.toContain("pw-5d2e");
    expect(shown).not.toContain(pki.client.key.split("\n")[1]!);
  });

  it.each([
    "http://root:pw-5d2e@127.0.0.1:2379",
    "https://root:pw-5d2e@etcd.example:2379",
    "root:pw-5d2e@127.0.0.1:2379",
    "https://:pw-5d2e@etcd.example:2379",
    "https://root:pw-5d2e@etcd.example:not-a-port",
    "ftp://root:pw-5d2e@etcd.example:2379",
  ])("refuses an endpoint with a password in it (%s) without repeating the password", (endpoint) => {
    let thrown: unknown;
    try {
      resolveConfig({ endpoints: [endpoint] });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect(shownEverywhere(thrown)).not.toContain("pw-5d2e");
    expect((thrown as Error).message).toContain("[redacted]@");
  });
});

describe("tokens", () => {
  it("replaces a token only on a client made with a token or credentials, which alone carry auth per call", async () => {
    const plain = new ScriptedClient({ endpoints: ["127.0.0.1:2379"] });
    const withToken = new ScriptedClient({ endpoints: ["127.0.0.1:2379"], token: "t1" });
    try {
      expect(() => plain.setToken("t2")).toThrow(/created with a token or with credentials/);
      const sent: (string | undefined)[] = [];
      withToken.wire.on("/etcdserverpb.KV/Range", (call) => (sent.push(call.options.metadata?.get("token")), {}));
      await withToken.kv.get("k");
      withToken.setToken("t2");
      await withToken.kv.get("k");
      expect(sent).toEqual(["t1", "t2"]);
      expect(() => withToken.setToken("")).toThrow(InvalidArgumentError);
    } finally {
      await plain.close();
      await withToken.close();
    }
  });
});

describe("TLS and plaintext", () => {
  it("refuses a tls config with an http:// endpoint, on every entry, instead of connecting in plaintext", () => {
    for (const transport of ["grpc", "http2", "gateway"] as const) {
      expect(() => new Client({ endpoints: ["http://127.0.0.1:2379"], transport, tls: {} })).toThrow(InvalidArgumentError);
    }
    expect(() => new WebClient({ endpoints: ["http://127.0.0.1:2379"], tls: {} })).toThrow(/https:\/\//);
  });

  it("takes host:port with a tls config as TLS", () => {
    expect(resolveConfig({ endpoints: ["127.0.0.1:2379"], tls: {} }).endpoints[0]!.secure).toBe(true);
  });

  it("refuses credentials over plaintext off this machine unless allowed", () => {
    const credentials = { username: "root", password: "pw" };
    expect(() => resolveConfig({ endpoints: ["http://10.0.0.1:2379"], ...credentials })).toThrow(/allowInsecureCredentials/);
    expect(() => resolveConfig({ endpoints: ["http://etcd.internal:2379"], ...credentials })).toThrow(InvalidArgumentError);
    expect(resolveConfig({ endpoints: ["http://10.0.0.1:2379"], ...credentials, allowInsecureCredentials: true }).credentials?.name).toBe("root");
    expect(resolveConfig({ endpoints: ["https://10.0.0.1:2379"], ...credentials }).credentials?.name).toBe("root");
    for (const loopback of ["http://127.0.0.1:2379", "http://127.8.0.2:2379", "http://localhost:2379", "http://[::1]:2379"]) {
      expect(resolveConfig({ endpoints: [loopback], ...credentials }).credentials?.name).toBe("root");
    }
  });
});
