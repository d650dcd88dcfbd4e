import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy } from "./fault-proxy.js";

/** An echo server that also keeps what it received, and the sockets it accepted. */
async function echoServer(): Promise<{ server: Server; port: number; received: () => number; sockets: Socket[] }> {
  let received = 0;
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      socket.write(chunk);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { server, port: address.port, received: () => received, sockets };
}

async function dial(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  return socket;
}

/** Reads from `socket` until `length` bytes came, or rejects on error or after `timeoutMs`. */
function readBytes(socket: Socket, length: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => done(new Error(`only ${size} of ${length} bytes within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= length) done();
    };
    const onError = (err: Error) => done(err);
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData).off("error", onError);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    socket.on("data", onData).on("error", onError);
  });
}

describe("FaultProxy", () => {
  let upstream: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;
  const clients: Socket[] = [];
  const client = async () => {
    const socket = await dial(proxy.port);
    clients.push(socket);
    return socket;
  };

  beforeEach(async () => {
    upstream = await echoServer();
    proxy = await FaultProxy.start({ port: upstream.port });
  });
  afterEach(async () => {
    for (const socket of clients.splice(0)) socket.destroy();
    await proxy.close();
    for (const socket of upstream.sockets) socket.destroy();
    await new Promise((resolve) => upstream.server.close(resolve));
  });

  it("carries bytes both ways unchanged", async () => {
    const socket = await client();
    const payload = randomBytes(3 * 1024 * 1024);
    socket.write(payload);
    const echoed = await readBytes(socket, payload.length);
    expect(echoed.equals(payload)).toBe(true);
    expect(proxy.forwardedBytes).toEqual({ up: payload.length, down: payload.length });
  });

  it("blackhole holds traffic in both directions without closing, then delivers it when passing again", async () => {
    const socket = await client();
    socket.write("before");
    await readBytes(socket, 6);
    proxy.blackhole();
    const closed = closedLater(socket);
    socket.write("held");
    const late = await client(); // a connection made during the blackhole is accepted and hears nothing
    late.write("late");
    await sleep(400);
    expect(upstream.received()).toBe(6);
    expect(closed()).toBe(false);

    const echoed = readBytes(socket, 4);
    const lateEchoed = readBytes(late, 4);
    proxy.pass();
    expect((await echoed).toString()).toBe("held");
    expect((await lateEchoed).toString()).toBe("late");
  });

  it("blackhole also holds what the target sends on its own", async () => {
    const socket = await client();
    socket.write("x");
    await readBytes(socket, 1);
    proxy.blackhole();
    let heard = 0;
    socket.on("data", (chunk: Buffer) => (heard += chunk.length));
    upstream.sockets[0]!.write("pushed by the target");
    await sleep(300);
    expect(heard).toBe(0);
    proxy.pass();
    await sleep(100);
    expect(heard).toBe("pushed by the target".length);
  });

  it("reset ends open connections with RST on both sides, and new connections pass again", async () => {
    const socket = await client();
    socket.write("x");
    await readBytes(socket, 1);
    const failure = once(socket, "error");
    const upstreamSocket = upstream.sockets[0]!;
    const upstreamError = new Promise<NodeJS.ErrnoException>((resolve) => upstreamSocket.once("error", resolve));
    proxy.reset();
    const [err] = (await failure) as [NodeJS.ErrnoException];
    expect(err.code).toBe("ECONNRESET");
    expect((await upstreamError).code).toBe("ECONNRESET");

    const again = await client();
    again.write("y");
    expect((await readBytes(again, 1)).toString()).toBe("y");
  });

  it("refuse resets new connections as soon as they are accepted", async () => {
    proxy.refuse();
    const socket = connect(proxy.port, "127.0.0.1");
    clients.push(socket);
    socket.write("x");
    const [err] = (await once(socket, "error")) as [NodeJS.ErrnoException];
    expect(err.code).toMatch(/ECONNRESET|EPIPE/);
    expect(upstream.received()).toBe(0);
  });

  it("latency delays each direction, and jitter keeps the order of chunks", async () => {
    const socket = await client();
    socket.write("warm");
    await readBytes(socket, 4);
    proxy.latency(150);
    let started = performance.now();
    socket.write("ping");
    await readBytes(socket, 4);
    expect(performance.now() - started).toBeGreaterThanOrEqual(295);

    proxy.latency(20, 60);
    const chunks = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(4, "0")};`);
    started = performance.now();
    for (const chunk of chunks) socket.write(chunk);
    const echoed = await readBytes(socket, chunks.join("").length);
    expect(echoed.toString()).toBe(chunks.join(""));
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);

    proxy.heal();
    started = performance.now();
    socket.write("fast");
    await readBytes(socket, 4);
    expect(performance.now() - started).toBeLessThan(150);
  });

  it("an upstream that refuses the connection resets the client's", async () => {
    const closedPort = upstream.port;
    await new Promise((resolve) => upstream.server.close(resolve));
    for (const s of upstream.sockets) s.destroy();
    const dead = await FaultProxy.start({ port: closedPort });
    try {
      const socket = connect(dead.port, "127.0.0.1");
      clients.push(socket);
      const [err] = (await once(socket, "error")) as [NodeJS.ErrnoException];
      expect(err.code).toBe("ECONNRESET");
    } finally {
      await dead.close();
      upstream = await echoServer();
    }
  });
});

describe("FaultProxy to a unix socket", () => {
  it("carries bytes, and a reset closes the socket behind it (a unix socket has no RST) and resets the client", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fault-proxy-"));
    const path = join(dir, "target.sock");
    const accepted: Socket[] = [];
    const server = createServer((socket) => {
      accepted.push(socket);
      socket.on("error", () => undefined).pipe(socket);
    });
    server.listen(path);
    await once(server, "listening");
    const proxy = await FaultProxy.start({ path });
    const socket = await dial(proxy.port);
    try {
      socket.write("over unix");
      expect((await readBytes(socket, 9)).toString()).toBe("over unix");
      const failure = once(socket, "error");
      const targetClosed = new Promise((resolve) => accepted[0]!.once("close", resolve));
      proxy.reset();
      expect(((await failure) as [NodeJS.ErrnoException])[0].code).toBe("ECONNRESET");
      await targetClosed;
    } finally {
      socket.destroy();
      await proxy.close();
      for (const s of accepted) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Whether `socket` closed, asked later. */
function closedLater(socket: Socket): () => boolean {
  let closed = false;
  socket.once("close", () => (closed = true));
  return () => closed;
}
