/**
 * The package as a user gets it: `npm pack` the repo, install the tarball into a fresh project
 * outside the repo, type-check typical usage against the shipped .d.ts files and load the shipped
 * JavaScript through both import and require. Needs no etcd server; everything runs in a temp dir.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, mustRun, run } from "../support/run.js";

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
// The repo's own compiler: the consumer installs no TypeScript of its own.
const tsc = join(repoRoot, "node_modules", ".bin", "tsc");

const CONSUMER_TSCONFIG = {
  compilerOptions: {
    strict: true,
    // Stricter than the default: the package's types must hold up under what careful users turn on.
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    target: "ES2022",
    // DOM supplies AbortSignal and friends, as in a browser or edge project: the package's types
    // must not need Node's.
    lib: ["ES2023", "ESNext.Disposable", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    // No ambient types of the consumer's own (no @types/node): whatever the package's declarations
    // reach must type-check from the package and its dependencies alone.
    types: [],
    noEmit: true,
    // Off on purpose: the shipped .d.ts files and everything they reach must type-check too.
    skipLibCheck: false,
  },
  files: ["usage.ts", "usage-cjs.cts"],
};

/**
 * Typical usage, with type-level assertions (Equal) so that a result type degrading to `any` or
 * losing its per-branch shape fails the compile, and `@ts-expect-error` lines that must stay errors
 * (tsc reports an unused @ts-expect-error, so each of them really has to fail).
 */
const USAGE_TS = `
import {
  Client,
  ErrEmptyKey,
  EtcdError,
  InvalidArgumentError,
  compare,
  op,
  type GetResponse,
  type KeyValue,
  type PutResponse,
  type DeleteResponse,
  type TxnResponse,
} from "etcd-sdk";
import { Client as WebClient, type BaseClient } from "etcd-sdk/web";
import { Client as Http2Client } from "etcd-sdk/http2";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export async function main(): Promise<void> {
  // Lazy connection, closed by hand.
  const lazy = new Client({ endpoints: ["http://127.0.0.1:2379", "http://127.0.0.1:22379"] });
  lazy.close();

  // Waits for a connection; closed at the end of the scope.
  await using client = await Client.connect({ endpoints: ["127.0.0.1:2379"], dialTimeoutMs: 1000 });
  assertType<Equal<typeof client, Client>>();

  const got = await client.kv.get("app/", {
    prefix: true,
    limit: 10,
    sort: { target: "mod", order: "descend" },
    revision: 5n,
    serializable: true,
  });
  assertType<Equal<typeof got, GetResponse>>();
  assertType<Equal<typeof got.header.revision, bigint>>();
  assertType<Equal<typeof got.count, bigint>>();
  assertType<Equal<typeof got.kvs, KeyValue[]>>();
  const first = got.kvs[0]?.valueString;
  assertType<Equal<typeof first, string | undefined>>();
  const config = got.kvs[0]?.json<{ port: number }>();
  assertType<Equal<typeof config, { port: number } | undefined>>();
  assertType<Equal<ReturnType<KeyValue["json"]>, unknown>>();
  const rev: bigint = got.header.revision;
  const modRevision: bigint | undefined = got.kvs[0]?.modRevision;

  const put = await client.kv.put("app/port", JSON.stringify({ port: 80 }), { lease: 0x1234n, prevKv: true });
  assertType<Equal<typeof put, PutResponse>>();
  assertType<Equal<typeof put.prevKv, KeyValue | undefined>>();
  await client.kv.put(new Uint8Array([1, 2]), new Uint8Array([3]), { lease: 7 });

  const del = await client.kv.delete("app/", { prefix: true, prevKv: true });
  assertType<Equal<typeof del, DeleteResponse>>();
  assertType<Equal<typeof del.deleted, bigint>>();
  await client.kv.delete("a", { end: "b" });

  await client.kv.compact(rev, { physical: true });
  await client.kv.compact(1);

  const controller = new AbortController();
  await client.kv.get("k", { signal: controller.signal, deadline: 500 });

  const r = await client
    .txn()
    .if(compare.value("app/port", "=", "80"), compare.version("app/port", ">", 0n))
    .then(op.put("app/port", "81"), op.get("app/port"))
    .else(op.get("app/other", { prefix: true }))
    .commit({ deadline: new Date(Date.now() + 1000) });
  assertType<Equal<typeof r.header.revision, bigint>>();
  if (r.succeeded) {
    assertType<Equal<typeof r.results, [PutResponse, GetResponse]>>();
    const kvs = r.results[1].kvs;
    assertType<Equal<typeof kvs, KeyValue[]>>();
    const prev = r.results[0].prevKv;
    assertType<Equal<typeof prev, KeyValue | undefined>>();
    // @ts-expect-error -- the then branch has two operations, so there is no sixth result
    void r.results[5];
    // @ts-expect-error -- results[0] is the put's response, which has no kvs
    void r.results[0].kvs;
  } else {
    assertType<Equal<typeof r.results, [GetResponse]>>();
    const kvs: KeyValue[] = r.results[0].kvs;
    void kvs;
    // @ts-expect-error -- the else branch has one operation
    void r.results[1];
  }

  // A nested transaction's result is typed after its own branches.
  const nested = await client.txn().then(op.txn({ if: [compare.modRevision("k", "<", 10)], then: [op.delete("k")] })).commit();
  if (nested.succeeded) {
    const inner = nested.results[0];
    assertType<Equal<typeof inner, TxnResponse<[ReturnType<typeof op.delete>], []>>>();
    if (inner.succeeded) {
      const deleted = inner.results[0].deleted;
      assertType<Equal<typeof deleted, bigint>>();
    }
  }

  try {
    await client.kv.put("", "value");
  } catch (err) {
    if (err instanceof ErrEmptyKey) {
      const message: string = err.serverMessage;
      const endpoint: string | undefined = err.endpoint;
      void [message, endpoint];
    } else if (err instanceof InvalidArgumentError) {
      const argument: string = err.argument;
      void argument;
    } else if (err instanceof EtcdError) {
      const name: string = err.name;
      void name;
    }
  }

  // @ts-expect-error -- keys are strings or bytes, not numbers
  await client.kv.get(42);
  // @ts-expect-error -- "size" is not a sort target
  await client.kv.get("a", { sort: { target: "size" } });
  // @ts-expect-error -- revisions are bigints or numbers, not strings
  await client.kv.get("a", { revision: "5" });
  // @ts-expect-error -- a lease is an int64, not a string
  await client.kv.put("a", "b", { lease: "0x1234" });
  // @ts-expect-error -- put needs a value
  await client.kv.put("a");
  // @ts-expect-error -- "==" is not a compare operator
  compare.value("a", "==", "b");
  // @ts-expect-error -- header.revision is a bigint, not a number
  const asNumber: number = got.header.revision;
  // @ts-expect-error -- endpoints is required
  new Client({});
  // @ts-expect-error -- dialTimeoutMs is a number of milliseconds
  new Client({ endpoints: ["127.0.0.1:2379"], dialTimeoutMs: "1s" });
  // @ts-expect-error -- then takes operations built with op.*, not compares
  client.txn().then(compare.value("a", "=", "b"));

  // The web entry's client has the same API over the gateway.
  const web = await WebClient.connect({ endpoints: ["https://etcd.example:2379"] });
  const fromWeb = await web.kv.get("app/");
  assertType<Equal<typeof fromWeb, GetResponse>>();
  // And the Node entry without grpc-js.
  const overHttp2 = await Http2Client.connect({ endpoints: ["127.0.0.1:2379"] });
  const fromHttp2 = await overHttp2.kv.get("app/");
  assertType<Equal<typeof fromHttp2, GetResponse>>();
  const either: BaseClient[] = [web, client, overHttp2];
  overHttp2.close();
  web.close();

  void [first, config, modRevision, asNumber, either];
}
`;

/** The same package from a CommonJS TypeScript file (TypeScript 5.8+ allows require of ESM under NodeNext). */
const USAGE_CJS_CTS = `
import sdk = require("etcd-sdk");
const client: sdk.Client = new sdk.Client({ endpoints: ["127.0.0.1:2379"] });
client.close();
export = client;
`;

/** Loads the installed package through import, without a server. */
const RUNTIME_MJS = `
import assert from "node:assert/strict";
import * as sdk from "etcd-sdk";
import { Client, EtcdError, InvalidArgumentError, compare, op } from "etcd-sdk";

for (const [name, value] of Object.entries({ Client, InvalidArgumentError })) {
  assert.equal(typeof value, "function", name + " is not exported as a class");
}
// KV, Txn and the result classes are reached through a client, never constructed by users.
for (const name of ["KV", "Txn", "Compare", "KeyValue", "ResponseHeader"]) assert.equal(name in sdk, false, name + " is exported as a value");
assert.throws(
  () => new Client({ endpoints: [] }),
  (err) => err instanceof InvalidArgumentError && err instanceof EtcdError && err.argument === "endpoints" && /endpoints/.test(err.message),
);
// Builders work offline, and validate before anything is sent.
assert.equal(op.get("k", { prefix: true }).kind, "get");
assert.throws(() => compare.value("k", "==", "v"), InvalidArgumentError);

// A client with a valid endpoint is created lazily and closes without ever connecting.
const client = new Client({ endpoints: ["127.0.0.1:1"] });
client.close();

// Only the exports map's entry points are reachable.
await assert.rejects(import("etcd-sdk/dist/src/kv.js"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" });
const pkg = (await import("etcd-sdk/package.json", { with: { type: "json" } })).default;
// The web entry and its one-file bundle load too (Node has fetch), with the same API.
for (const entry of ["etcd-sdk/web", "etcd-sdk/web/bundle"]) {
  const web = await import(entry);
  assert.throws(() => new web.Client({ endpoints: ["127.0.0.1:2379"], transport: "grpc" }), (err) => err instanceof web.InvalidArgumentError && err.argument === "transport");
  new web.Client({ endpoints: ["127.0.0.1:2379"] }).close();
}
// The testing entry serves an etcd in memory, with the same API.
{
  const { MemoryEtcd } = await import("etcd-sdk/testing");
  const etcd = new MemoryEtcd();
  try {
    const memory = etcd.client();
    await memory.kv.put("k", "v");
    assert.equal((await memory.kv.get("k")).kvs[0]?.valueString, "v");
  } finally {
    await etcd.close();
  }
}
assert.equal(pkg.name, "etcd-sdk");
console.log("esm ok");
`;

/** The Node entry without grpc-js, in a process of its own: nothing else may have loaded grpc-js first. */
const RUNTIME_HTTP2_MJS = `
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Client, InvalidArgumentError } from "etcd-sdk/http2";

assert.throws(() => new Client({ endpoints: ["127.0.0.1:2379"], transport: "grpc" }), (err) => err instanceof InvalidArgumentError && err.argument === "transport");
new Client({ endpoints: ["127.0.0.1:2379"] }).close();
new Client({ endpoints: ["127.0.0.1:2379"], transport: "gateway" }).close();
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => /[\\\\/](@grpc[\\\\/]grpc-js|nice-grpc)[\\\\/]/.test(path));
assert.deepEqual(loaded, []);
console.log("http2 entry ok");
`;

/** Loads the installed package through require(), which loads ESM on Node 20.19+ and 22.12+. */
const RUNTIME_CJS = `
const assert = require("node:assert/strict");
const sdk = require("etcd-sdk");
assert.equal(typeof sdk.Client, "function");
assert.throws(() => new sdk.Client({ endpoints: [] }), (err) => err instanceof sdk.InvalidArgumentError && err.argument === "endpoints");
console.log("cjs ok");
`;

let workDir: string;
let consumerDir: string;
let tarball: string;
let tarballFiles: string[];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "etcd-sdk-package-"));
  const packDir = join(workDir, "pack");
  consumerDir = join(workDir, "consumer");
  // npm pack does not create its destination.
  await mkdir(packDir);

  // npm pack runs the package's own prepack script (`npm run build`: a clean rebuild of dist/)
  // before packing, so the tarball always matches the sources and this also proves the publish
  // path builds. --ignore-scripts=false makes that hold even for a user whose npm config turns
  // scripts off, which would otherwise pack whatever stale dist/ lies around (or none).
  // Side effect: the repo's dist/ is deleted and rebuilt in place; nothing else in the suite reads it.
  await mustRun("npm pack", "npm", ["pack", "--ignore-scripts=false", "--pack-destination", packDir], repoRoot);
  const packed = (await readdir(packDir)).filter((f) => f.endsWith(".tgz"));
  expect(packed, "npm pack should write exactly one tarball").toHaveLength(1);
  tarball = join(packDir, packed[0]!);
  const listing = await mustRun("tar -tzf", "tar", ["-tzf", tarball], workDir);
  tarballFiles = listing.stdout.split("\n").filter((line) => line !== "");
}, 300_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  it("ships the built JavaScript and declarations, and no tests or node_modules", () => {
    // npm puts every entry under package/.
    expect(tarballFiles.every((f) => f.startsWith("package/")), tarballFiles.join("\n")).toBe(true);
    const files = tarballFiles.map((f) => f.slice("package/".length));
    expect(files).toContain("package.json");
    expect(files).toContain("dist/src/index.d.ts");
    expect(files).toContain("dist/src/index.js");
    expect(files).toContain("dist/src/web.d.ts");
    expect(files).toContain("dist/src/http2.d.ts");
    expect(files).toContain("dist/web/etcd-sdk.min.js");
    expect(files.filter((f) => f.startsWith("test/") || f.includes("/test/")), "test files in the tarball").toEqual([]);
    expect(files.filter((f) => f.split("/").includes("node_modules")), "node_modules in the tarball").toEqual([]);
    expect(files.filter((f) => f.endsWith(".tgz") || f.endsWith(".tsbuildinfo")), "build leftovers in the tarball").toEqual([]);
    // The sources ship only for the declaration maps: those of the library, nothing else.
    const sources = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
    expect(sources.filter((f) => !/^(src|gen|middleware)\//.test(f)), "TypeScript files beside the library's sources").toEqual([]);
    const declarations = files.filter((f) => f.endsWith(".d.ts"));
    expect(declarations.filter((f) => !files.includes(`${f}.map`)), "declarations without a map").toEqual([]);
  });
});

describe("a fresh project that installs the tarball", () => {
  beforeAll(async () => {
    await rm(consumerDir, { recursive: true, force: true });
    await mkdir(consumerDir, { recursive: true });
    const pkg = { name: "etcd-sdk-consumer", version: "0.0.0", private: true, type: "module" };
    await writeFile(join(consumerDir, "package.json"), JSON.stringify(pkg, null, 2));
    // The registry is reachable, but the npm cache already holds the dependencies.
    await mustRun("npm install", "npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], consumerDir);
    await writeFile(join(consumerDir, "tsconfig.json"), JSON.stringify(CONSUMER_TSCONFIG, null, 2));
    await writeFile(join(consumerDir, "usage.ts"), USAGE_TS);
    await writeFile(join(consumerDir, "usage-cjs.cts"), USAGE_CJS_CTS);
    await writeFile(join(consumerDir, "runtime.mjs"), RUNTIME_MJS);
    await writeFile(join(consumerDir, "runtime.cjs"), RUNTIME_CJS);
    await writeFile(join(consumerDir, "runtime-http2.mjs"), RUNTIME_HTTP2_MJS);
  }, 300_000);

  it("type-checks typical usage under strict NodeNext with skipLibCheck off", async () => {
    const r = await run(tsc, ["-p", join(consumerDir, "tsconfig.json")], consumerDir);
    expect(r.code, describeRun("tsc", r)).toBe(0);
  }, 120_000);

  it("maps its declarations to the shipped sources, so go-to-definition lands in TypeScript", async () => {
    const installed = join(consumerDir, "node_modules", "etcd-sdk");
    for (const entry of ["index", "http2", "web", "testing"]) {
      const mapFile = join(installed, "dist", "src", `${entry}.d.ts.map`);
      const map = JSON.parse(await readFile(mapFile, "utf8")) as { sources: string[] };
      for (const source of map.sources) expect(existsSync(join(dirname(mapFile), source)), `${entry}.d.ts.map -> ${source}`).toBe(true);
    }
  });

  it("imports the package and validates input without a server", async () => {
    const r = await run(process.execPath, ["runtime.mjs"], consumerDir);
    expect(r.code, describeRun("node runtime.mjs", r)).toBe(0);
    expect(r.stdout).toContain("esm ok");
  }, 60_000);

  it('loads the "etcd-sdk/http2" entry without @grpc/grpc-js or nice-grpc', async () => {
    const r = await run(process.execPath, ["runtime-http2.mjs"], consumerDir);
    expect(r.code, describeRun("node runtime-http2.mjs", r)).toBe(0);
    expect(r.stdout).toContain("http2 entry ok");
  }, 60_000);

  // require(esm) is on by default from Node 20.19 and 22.12; on older Node only the ESM path holds.
  it.runIf(process.features.require_module === true)("loads through require() from a CommonJS file", async () => {
    const r = await run(process.execPath, ["runtime.cjs"], consumerDir);
    expect(r.code, describeRun("node runtime.cjs", r)).toBe(0);
    expect(r.stdout).toContain("cjs ok");
  }, 60_000);
});
