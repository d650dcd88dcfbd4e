import type { ClientMiddleware } from "nice-grpc-common";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import {
  Client,
  ErrAuthFailed,
  ErrInvalidAuthToken,
  ErrPermissionDenied,
  ErrUserEmpty,
  EtcdServerError,
  InvalidArgumentError,
  op,
} from "../../../src/index.js";
import type { EtcdCluster } from "../../harness/cluster.js";
import { clientFor, configFor, enableAuth, gateway, startCluster, uniquePrefix } from "../../helpers.js";

/** Counts the Authenticate attempts a client makes (inner middleware sees every attempt). */
function authenticateCounter(): { count: () => number; middleware: ClientMiddleware } {
  let n = 0;
  return {
    count: () => n,
    middleware: async function* (call, options) {
      if (call.method.path === "/etcdserverpb.Auth/Authenticate") n++;
      return yield* call.next(call.request, options);
    } as ClientMiddleware,
  };
}

describe("auth", () => {
  // Simple tokens that expire after 1 s idle, so refreshes can be provoked.
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startCluster(1, ["--auth-token=simple", "--auth-token-ttl=1"]);
    await enableAuth(cluster, "root-pw", "alice-pw");
    return () => cluster.close();
  });

  const clientAs = (username: string, password: string, extra: Partial<ConstructorParameters<typeof Client>[0]> = {}) =>
    clientFor(cluster, { username, password, ...extra });

  it("shows no password or token when the client or the Authenticate request is logged", async () => {
    const logged: string[] = [];
    const tokens = new Set<string>();
    const logger: ClientMiddleware = async function* (call, options) {
      logged.push(inspect(call.request, { depth: 10, showHidden: true }), JSON.stringify(call.request), JSON.stringify({ ...(call.request as object) }));
      const token = options.metadata?.get("token");
      if (token) tokens.add(token);
      return yield* call.next(call.request, options);
    } as ClientMiddleware;
    await using root = clientAs("root", "root-pw", { middleware: { inner: [logger] } });
    await root.kv.put(`${uniquePrefix()}k`, "v");
    expect(logged.some((line) => line.includes('"name":"root"'))).toBe(true);
    expect(tokens.size).toBe(1);
    const shown = [...logged, inspect(root, { depth: 20, showHidden: true }), JSON.stringify(root), String(root)].join("\n");
    expect(shown).not.toContain("root-pw");
    for (const token of tokens) expect(shown).not.toContain(token);
    expect(JSON.parse(JSON.stringify(root))).toEqual({ endpoints: root.endpoints, transport: expect.any(String) });
  });

  it("authenticates and sends the token on every call", async () => {
    await using root = clientAs("root", "root-pw");
    const p = uniquePrefix();
    await root.kv.put(`${p}k`, "v");
    expect((await root.kv.get(`${p}k`)).kvs[0]?.valueString).toBe("v");
    const res = await root.txn().then(op.get(`${p}k`)).commit();
    expect(res.succeeded).toBe(true);
  });

  it("rejects a wrong password with ErrAuthFailed and stays usable for others", async () => {
    await expect(Client.connect(configFor(cluster, { username: "root", password: "nope" }))).rejects.toBeInstanceOf(ErrAuthFailed);
    await using wrong = clientAs("root", "nope");
    await expect(wrong.kv.get("pub/x")).rejects.toBeInstanceOf(ErrAuthFailed);
    await expect(wrong.kv.get("pub/x")).rejects.toBeInstanceOf(ErrAuthFailed);
    await using right = clientAs("alice", "alice-pw");
    expect((await right.kv.get("pub/x")).count).toBe(0n);
  });

  it("rejects calls without credentials", async () => {
    await using anonymous = clientFor(cluster);
    const err = await anonymous.kv.get("pub/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdServerError);
    expect(err).toBeInstanceOf(ErrUserEmpty);
  });

  it("enforces permissions: alice reads pub/ but may not write it or read elsewhere", async () => {
    await using root = clientAs("root", "root-pw");
    await root.kv.put("pub/greeting", "hi");
    await using alice = clientAs("alice", "alice-pw");
    expect((await alice.kv.get("pub/greeting")).kvs[0]?.valueString).toBe("hi");
    await expect(alice.kv.put("pub/greeting", "changed")).rejects.toBeInstanceOf(ErrPermissionDenied);
    await expect(alice.kv.get("secret")).rejects.toBeInstanceOf(ErrPermissionDenied);
    expect((await root.kv.get("pub/greeting")).kvs[0]?.valueString).toBe("hi");
  });

  it("refreshes an expired token once for many concurrent calls", async () => {
    const counter = authenticateCounter();
    await using root = clientAs("root", "root-pw", { middleware: { inner: [counter.middleware] } });
    const p = uniquePrefix();
    await root.kv.put(`${p}k`, "v");
    expect(counter.count()).toBe(1);
    // Idle past the 1 s token TTL: etcd forgets the token and answers ErrInvalidAuthToken.
    await sleep(2500);
    const results = await Promise.all(Array.from({ length: 20 }, () => root.kv.get(`${p}k`)));
    expect(results.every((r) => r.kvs[0]?.valueString === "v")).toBe(true);
    expect(counter.count()).toBe(2);
  });

  it("wants username and password together", () => {
    expect(() => clientFor(cluster, { username: "root" })).toThrow(InvalidArgumentError);
    expect(() => clientFor(cluster, { password: "x" })).toThrow(/username must be a non-empty string/);
  });
});

describe("auth with JWT tokens", () => {
  // A JWT carries the auth store revision it was issued at; after any change to users or roles
  // etcd rejects writes made with it as ErrAuthOldRevision.
  let cluster: EtcdCluster;
  let rootToken: string;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "etcd-jwt-"));
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(join(dir, "pub.pem"), publicKey.export({ type: "spki", format: "pem" }));
    await writeFile(join(dir, "priv.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
    cluster = await startCluster(1, [`--auth-token=jwt,pub-key=${join(dir, "pub.pem")},priv-key=${join(dir, "priv.pem")},sign-method=RS256`]);
    rootToken = await enableAuth(cluster, "root-pw", "alice-pw");
    return async () => {
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    };
  });

  it("sends a token the application was issued, and the one setToken gives from then on", async () => {
    const p = uniquePrefix();
    const aliceToken = ((await gateway(cluster, "/v3/auth/authenticate", { name: "alice", password: "alice-pw" })) as { token: string }).token;
    await using client = clientFor(cluster, { token: rootToken });
    await client.kv.put(`${p}k`, "by root");
    client.setToken(aliceToken);
    // alice may only read pub/.
    await expect(client.kv.put(`${p}k`, "by alice")).rejects.toBeInstanceOf(ErrPermissionDenied);
    expect((await client.kv.get("pub/x")).count).toBe(0n);
    // Without credentials a token etcd refuses cannot be renewed: the call fails with etcd's error.
    client.setToken("not.a.jwt");
    await expect(client.kv.get("pub/x")).rejects.toBeInstanceOf(ErrInvalidAuthToken);
    expect(() => client.setToken("")).toThrow(InvalidArgumentError);
    expect(() => clientFor(cluster, { token: "two\nlines" })).toThrow(/token must be a non-empty string/);
  });

  it("refreshes a token made stale by a change of the auth store and retries once", async () => {
    const counter = authenticateCounter();
    await using root = clientFor(cluster, { username: "root", password: "root-pw", middleware: { inner: [counter.middleware] } });
    const p = uniquePrefix();
    await root.kv.put(`${p}k`, "1");
    expect(counter.count()).toBe(1);
    await gateway(cluster, "/v3/auth/user/add", { name: "bob", password: "pw" }, rootToken);
    await root.kv.put(`${p}k`, "2");
    expect(counter.count()).toBe(2);
    const kv = (await root.kv.get(`${p}k`)).kvs[0];
    // Written exactly once more: the rejected attempt was not applied.
    expect(kv?.valueString).toBe("2");
    expect(kv?.version).toBe(2n);
  });
});
