/**
 * The browser bundle in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * a page served from its own origin on localhost loads the bundle and uses it against an etcd that
 * allows that origin with --cors. The page puts, gets, watches and keeps a lease alive; the test
 * reads what it saw and checks it against etcd over gRPC.
 */
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebBundle, type WebBundle } from "../../scripts/web-bundle.js";
import { Client } from "../../src/index.js";
import type { EtcdCluster } from "../harness/cluster.js";
import { startCluster } from "../helpers.js";

/** Debian's binary itself: /usr/bin/chromium is a shell wrapper. CHROMIUM_BIN overrides it. */
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/lib/chromium/chromium";

/** What the page does with the bundle; it leaves its findings in window.outcome. */
const PAGE_SCRIPT = `
import { Client, ErrEmptyKey } from "/etcd-sdk.min.js";
const endpoint = new URLSearchParams(location.search).get("etcd");
const outcome = {};
try {
  const client = await Client.connect({ endpoints: [endpoint] });
  outcome.put = (await client.kv.put("browser/greeting", "hello from chromium")).header.revision.toString();
  const got = await client.kv.get("browser/greeting");
  outcome.value = got.kvs[0].valueString;
  const watcher = client.watch("browser/events/", { prefix: true });
  await watcher.ready;
  await client.kv.put("browser/events/1", "first");
  await client.kv.delete("browser/events/1");
  const events = [];
  for await (const response of watcher) {
    events.push(...response.events.map((e) => e.type + " " + e.kv.keyString));
    if (events.length >= 2) break;
  }
  outcome.events = events;
  const cache = await client.cache({ prefix: "browser/cached/" });
  const written = await client.kv.put("browser/cached/a", "cached in the page");
  await cache.waitForRevision(written.header.revision);
  outcome.cached = (await cache.get("browser/cached/a")).kv?.valueString;
  outcome.cachedConsistently = (await cache.list({ prefix: "browser/cached/", consistent: true })).count.toString();
  await cache.close();
  const lease = await client.lease.grant(2);
  const keepAlive = await client.lease.keepAlive(lease.id);
  await client.kv.put("browser/leased", "alive", { lease: lease.id });
  await new Promise((r) => setTimeout(r, 3000));
  outcome.leaseAlive = (await client.kv.get("browser/leased")).count.toString();
  outcome.leaseId = lease.id.toString();
  keepAlive.close();
  try { await client.kv.put("", "x"); } catch (e) { outcome.typedError = e instanceof ErrEmptyKey ? e.name : String(e); }
  client.close();
} catch (e) {
  outcome.failure = String(e && e.stack || e);
}
window.outcome = outcome;
`;

describe("the browser bundle in headless Chromium", () => {
  let dir: string;
  let bundle: WebBundle;
  let server: Server;
  let origin: string;
  let cluster: EtcdCluster;
  let browser: Browser;

  beforeAll(async () => {
    await access(CHROMIUM).catch(() => {
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set CHROMIUM_BIN`);
    });
    dir = await mkdtemp(join(tmpdir(), "etcd-sdk-web-"));
    bundle = await buildWebBundle(dir);
    const code = await readFile(bundle.file);
    server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (path === "/etcd-sdk.min.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(code);
      if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><script type="module">${PAGE_SCRIPT}</script>`);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Only the page's origin may call etcd from a browser.
    cluster = await startCluster(1, [`--cors=${origin}`]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.close();
    server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("imports no Node built-ins and not @grpc/grpc-js", () => {
    expect(bundle.inputs.filter((input) => /@grpc\/grpc-js|^node:|\/nice-grpc\/|src\/grpc-channels\.ts|src\/grpc-wire\.ts/.test(input))).toEqual([]);
    expect(bundle.bytes).toBeGreaterThan(0);
  });

  it("puts, gets, watches, caches a prefix and keeps a lease alive from a page on another origin", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(`${origin}/?etcd=${encodeURIComponent(cluster.members[0]!.clientUrl)}`);
    await page.waitForFunction(() => (window as { outcome?: unknown }).outcome !== undefined, undefined, { timeout: 20_000 });
    const outcome = await page.evaluate(() => (window as unknown as { outcome: Record<string, unknown> }).outcome);
    expect(errors).toEqual([]);
    expect(outcome.failure).toBeUndefined();
    expect(outcome.value).toBe("hello from chromium");
    expect(outcome.events).toEqual(["put browser/events/1", "delete browser/events/1"]);
    // A cache of a prefix, fed by the page's watch, with a consistent read over the gateway.
    expect(outcome.cached).toBe("cached in the page");
    expect(outcome.cachedConsistently).toBe("1");
    // The 2 s lease outlived 3 s of waiting: the page's keep-alives reached etcd.
    expect(outcome.leaseAlive).toBe("1");
    expect(outcome.typedError).toBe("ErrEmptyKey");

    // What the page wrote is in etcd, as a gRPC client sees it.
    await using client = new Client({ endpoints: cluster.endpoints });
    const got = await client.kv.get("browser/greeting");
    expect(got.kvs[0]?.valueString).toBe("hello from chromium");
    expect(got.kvs[0]?.modRevision.toString()).toBe(outcome.put);
    expect((await client.lease.leases()).ids.map(String)).toContain(outcome.leaseId);
  });

  it("is refused by etcd from an origin --cors does not allow", async () => {
    const page = await browser.newPage();
    // The same server under another name is another origin, which etcd does not allow.
    await page.goto(`${origin.replace("127.0.0.1", "localhost")}/?etcd=${encodeURIComponent(cluster.members[0]!.clientUrl)}`);
    await page.waitForFunction(() => (window as { outcome?: unknown }).outcome !== undefined, undefined, { timeout: 20_000 });
    const outcome = await page.evaluate(() => (window as unknown as { outcome: Record<string, unknown> }).outcome);
    expect(String(outcome.failure)).toMatch(/EndpointError/);
  });
});
