import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { FaultProxy } from "./fault-proxy.js";
import { PeerNetwork, peerNetworkUnavailable } from "./peer-network.js";

/** Every etcd process any harness in this process started, so that none outlives it. */
const liveProcesses = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveProcesses) child.kill("SIGKILL");
});

export class EtcdStartError extends Error {
  override name = "EtcdStartError";
  constructor(
    message: string,
    readonly portConflict: boolean,
  ) {
    super(message);
  }
}

/** Ports the kernel hands out as free; etcd binds them a moment later (see the retry in start). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
      return server;
    }),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** tmpfs when the machine has one, so etcd's fsyncs cost nothing. */
function dataRoot(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/** TLS for the members' client listeners (peers keep plain HTTP). */
export interface ClientTls {
  certFile: string;
  keyFile: string;
  /** CA that signs client certificates; with it, etcd requires one (mutual TLS). */
  clientCaFile?: string;
  /** PEM material the harness itself uses to talk to the members. */
  caPem: string;
  clientCertPem?: string;
  clientKeyPem?: string;
}

interface MemberSpec {
  name: string;
  /** The port clients are given: the member's own, or its fault proxy's. */
  clientPort: number;
  peerPort: number;
  dataDir: string;
  args: string[];
  tls: ClientTls | undefined;
  /** Runs etcd elsewhere than here, e.g. `ip netns exec <namespace>`. */
  launcher?: string[];
  /** How the harness itself reaches the member, past any fault proxy: a URL, or a unix socket. */
  direct?: { url: string } | { socketPath: string };
  /** The member's peer URL, when its peers reach it elsewhere than on loopback. */
  peerUrl?: string;
}

/** A small POST/GET over http or https that takes the test CA, as fetch cannot (or over a unix socket). */
function call(url: string, tls: ClientTls | undefined, body?: string, timeoutMs = 2000, socketPath?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const options = {
      method: body === undefined ? "GET" : "POST",
      timeout: timeoutMs,
      ...(socketPath ? { socketPath } : {}),
      ...(tls ? { ca: tls.caPem, cert: tls.clientCertPem, key: tls.clientKeyPem } : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(url, options, (res) => {
      let data = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (data += chunk));
      res.on("end", () => {
        try {
          resolve(JSON.parse(data));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

export class EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logTail: string[] = [];
  private paused = false;
  private lastExit = "never started";

  constructor(
    private readonly binary: string,
    private readonly spec: MemberSpec,
  ) {}

  get name(): string {
    return this.spec.name;
  }
  /** host:port of the client listener, as the SDK's endpoints take it. */
  get endpoint(): string {
    return `127.0.0.1:${this.spec.clientPort}`;
  }
  /** The member's unix socket as an endpoint (unix:// or unixs://), when the cluster has them. */
  get socketEndpoint(): string {
    return `${this.spec.tls ? "unixs" : "unix"}://${this.spec.dataDir}.sock`;
  }
  get clientUrl(): string {
    return `${this.spec.tls ? "https" : "http"}://${this.endpoint}`;
  }
  /** The member's client listener itself, past its fault proxy (a unix:// endpoint inside a namespace); `endpoint` without proxies. */
  get directEndpoint(): string {
    const direct = this.spec.direct;
    if (!direct) return this.endpoint;
    return "socketPath" in direct ? `unix://${direct.socketPath}` : direct.url;
  }
  get peerUrl(): string {
    return this.spec.peerUrl ?? `http://127.0.0.1:${this.spec.peerPort}`;
  }

  /** A call to the member itself, past its fault proxy: what the harness asks must not suffer the faults it injects. */
  private callDirect(path: string, body?: string, timeoutMs?: number): Promise<unknown> {
    const direct = this.spec.direct;
    if (direct && "socketPath" in direct) return call(`http://localhost${path}`, this.spec.tls, body, timeoutMs, direct.socketPath);
    return call(`${direct?.url ?? this.clientUrl}${path}`, this.spec.tls, body, timeoutMs);
  }
  get running(): boolean {
    return this.child !== undefined;
  }
  get isPaused(): boolean {
    return this.paused;
  }
  /** The last lines etcd wrote, for failure messages. */
  get log(): string {
    return this.logTail.join("");
  }

  get binaryPath(): string {
    return this.binary;
  }

  /** This member's command line, with the identity of another member put in. */
  argsFor(other: { name: string; clientPort: number; peerPort: number; dataDir: string }): string[] {
    if (this.spec.direct) throw new Error("a cluster behind fault proxies or in network namespaces cannot take new members");
    const scheme = this.spec.tls ? "https" : "http";
    const own: Record<string, string> = {
      "--name": other.name,
      "--data-dir": other.dataDir,
      "--listen-client-urls": `${scheme}://127.0.0.1:${other.clientPort}`,
      "--advertise-client-urls": `${scheme}://127.0.0.1:${other.clientPort}`,
      "--listen-peer-urls": `http://127.0.0.1:${other.peerPort}`,
      "--initial-advertise-peer-urls": `http://127.0.0.1:${other.peerPort}`,
    };
    return this.spec.args.map((a) => {
      const flag = a.split("=", 1)[0]!;
      return flag in own ? `${flag}=${own[flag]}` : a;
    });
  }

  /** Spawns the process; `waitHealthy` then waits until it serves. */
  spawn(): void {
    if (this.child) throw new Error(`${this.name} is already running`);
    // etcd reads ETCD_* environment variables as flags; the harness's own (ETCD_BIN, ...) must not reach it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("ETCD_")));
    const [command, ...launcherArgs] = [...(this.spec.launcher ?? []), this.binary];
    const child = spawn(command!, [...launcherArgs, ...this.spec.args], { stdio: ["ignore", "ignore", "pipe"], env });
    this.child = child;
    this.paused = false;
    liveProcesses.add(child);
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.logTail.push(chunk);
      if (this.logTail.length > 200) this.logTail.shift();
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.lastExit = `exited with ${signal ?? `code ${code}`}`;
        liveProcesses.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
  }

  /** Resolves once the member answers /health with a leader; rejects if the process exits first. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.child) {
        const log = this.log;
        throw new EtcdStartError(
          `etcd member ${this.name} exited during start-up:\n${log.slice(-4000)}`,
          /address already in use/.test(log),
        );
      }
      try {
        const body = (await this.callDirect("/health", undefined, 1000)) as { health?: string };
        if (body.health === "true") return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new EtcdStartError(`etcd member ${this.name} not healthy after ${timeoutMs} ms:\n${this.log.slice(-4000)}`, false);
  }

  /** Ends the process at once (SIGKILL by default) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.child) return;
    this.child.kill(signal);
    if (this.paused && signal !== "SIGKILL") this.child.kill("SIGCONT");
    await this.exited;
    this.paused = false;
  }

  /**
   * Freezes the process (SIGSTOP): its sockets stay open but it answers nothing. Resolves once
   * every thread has stopped: the signal lands a moment after kill() returns, and a request sent
   * in between would still be answered.
   */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child?.pid) throw new Error(`${this.name} is not running (${this.lastExit}):\n${this.log.slice(-2000)}`);
    child.kill("SIGSTOP");
    this.paused = true;
    const tasks = `/proc/${child.pid}/task`;
    if (!existsSync(tasks)) return;
    for (let i = 0; i < 500; i++) {
      const states = readdirSync(tasks).map((t) => {
        try {
          // The state follows the ")" that ends the command name in /proc/<pid>/task/<tid>/stat.
          const stat = readFileSync(`${tasks}/${t}/stat`, "utf8");
          return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        } catch {
          return "T"; // the thread is gone
        }
      });
      if (states.every((s) => s === "T" || s === "t")) return;
      await sleep(2);
    }
    throw new Error(`${this.name} did not stop after SIGSTOP`);
  }

  resume(): void {
    if (!this.child) throw new Error(`${this.name} is not running (${this.lastExit}):\n${this.log.slice(-2000)}`);
    this.child.kill("SIGCONT");
    this.paused = false;
  }

  /** Kills the member if it runs and starts it again on the same ports and data. */
  async restart(): Promise<void> {
    await this.kill();
    this.spawn();
    await this.waitHealthy();
  }

  /** Fields of the gateway's Status answer that tests need; uint64 IDs as decimal strings. */
  async status(): Promise<{ memberId: string; leader: string; raftTerm: string }> {
    const body = (await this.callDirect("/v3/maintenance/status", "{}")) as {
      header: { member_id: string; raft_term: string };
      leader: string;
    };
    return { memberId: body.header.member_id, leader: body.leader, raftTerm: body.header.raft_term };
  }

  /** Hands this member's leadership to the member `memberId` (decimal); only the leader can. */
  async transferLeadership(memberId: string): Promise<void> {
    await this.callDirect("/v3/maintenance/transfer-leadership", JSON.stringify({ targetID: memberId }));
  }

  async removeData(): Promise<void> {
    await rm(this.spec.dataDir, { recursive: true, force: true });
  }
}

/** The command line of a member of a new cluster. */
function memberArgs(m: {
  name: string;
  dataDir: string;
  listenClient: string;
  advertiseClient: string;
  peerUrl: string;
  initialCluster: string;
  token: string;
  noFsync: boolean;
  extraArgs: string[];
}): string[] {
  return [
    `--name=${m.name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=${m.listenClient}`,
    `--advertise-client-urls=${m.advertiseClient}`,
    `--listen-peer-urls=${m.peerUrl}`,
    `--initial-advertise-peer-urls=${m.peerUrl}`,
    `--initial-cluster=${m.initialCluster}`,
    "--initial-cluster-state=new",
    `--initial-cluster-token=${m.token}`,
    "--log-level=error",
    ...(m.noFsync ? ["--unsafe-no-fsync"] : []),
    ...m.extraArgs,
  ];
}

export interface ClusterOptions {
  /** etcd server binary to run. */
  binary: string;
  /** Number of members: 1 or 3 in this project's tests. */
  size?: number;
  /** Extra flags for every member (auth token mode, quotas, CORS, ...). */
  extraArgs?: string[];
  /** Whether the binary knows --unsafe-no-fsync (etcd 3.5 and newer). */
  noFsync?: boolean;
  /** Serve clients over TLS. */
  clientTls?: ClientTls;
  /** Start a single member from a snapshot file, restored with this etcdutl. */
  restore?: { etcdutl: string; snapshot: string };
  /** Have every member listen on a unix socket too (see EtcdMember.socketEndpoint). */
  unixSockets?: boolean;
  /**
   * Put a fault proxy in front of every member's client port: `endpoints` (and each member's
   * `endpoint`, `clientUrl` and advertised client URL) are then the proxies', and
   * `faults(i)` controls member i's. The harness's own calls (health, status) bypass them.
   */
  faultProxies?: boolean;
  /**
   * Run every member in a network namespace of its own, so that `partitionFromPeers(i)` can cut a
   * member off from its peers while its clients still reach it. Implies `faultProxies` (the
   * proxies are how clients reach into the namespaces). Needs root and iproute2: check
   * `peerNetworkUnavailable()` first. No TLS, no `join`.
   */
  peerNamespaces?: boolean;
}

/** A throwaway etcd cluster on loopback ports with its data on tmpfs. */
export class EtcdCluster implements AsyncDisposable {
  private constructor(
    readonly members: EtcdMember[],
    private readonly root: string,
    private readonly proxies: FaultProxy[] = [],
    private readonly peerNetwork?: PeerNetwork,
  ) {}

  /** Member i's fault proxy (the cluster must have started with `faultProxies` or `peerNamespaces`). */
  faults(i: number): FaultProxy {
    const proxy = this.proxies[i];
    if (!proxy) throw new Error(`member ${i} has no fault proxy: start the cluster with faultProxies`);
    return proxy;
  }

  /** Cuts member i off from its peers (packets dropped, no reset); its clients still reach it. */
  async partitionFromPeers(i: number): Promise<void> {
    await this.network().cut(i);
  }

  /** Restores member i's link to its peers. */
  async reconnectPeers(i: number): Promise<void> {
    await this.network().restore(i);
  }

  private network(): PeerNetwork {
    if (!this.peerNetwork) throw new Error("the cluster has no peer network: start it with peerNamespaces");
    return this.peerNetwork;
  }

  /** host:port of every member's client listener. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  static async start(options: ClusterOptions): Promise<EtcdCluster> {
    // Another process may bind a port between freePorts() and etcd's bind; start over on new ports.
    for (let attempt = 1; ; attempt++) {
      const cluster = await EtcdCluster.startOnce(options);
      try {
        await Promise.all(cluster.members.map((m) => m.waitHealthy()));
        return cluster;
      } catch (err) {
        await cluster.close();
        if (!(err instanceof EtcdStartError && err.portConflict) || attempt === 5) throw err;
      }
    }
  }

  private static async startOnce(options: ClusterOptions): Promise<EtcdCluster> {
    if (options.peerNamespaces || options.faultProxies) {
      if (options.clientTls || options.restore) throw new Error("fault proxies and peer namespaces take neither client TLS nor a restored snapshot");
      return EtcdCluster.startBehindProxies(options);
    }
    return EtcdCluster.startPlain(options);
  }

  private static async startPlain({ binary, size = 1, extraArgs = [], noFsync = true, clientTls, restore, unixSockets = false }: ClusterOptions): Promise<EtcdCluster> {
    const scheme = clientTls ? "https" : "http";
    const tlsArgs = clientTls
      ? [
          `--cert-file=${clientTls.certFile}`,
          `--key-file=${clientTls.keyFile}`,
          ...(clientTls.clientCaFile ? [`--trusted-ca-file=${clientTls.clientCaFile}`, "--client-cert-auth"] : []),
        ]
      : [];
    const root = await mkdtemp(join(dataRoot(), "etcd-sdk-test-"));
    const ports = await freePorts(size * 2);
    const token = `etcd-sdk-${randomBytes(6).toString("hex")}`;
    const names = Array.from({ length: size }, (_, i) => `m${i}`);
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(",");
    const members = names.map((name, i) => {
      const clientPort = ports[2 * i]!;
      const peerPort = ports[2 * i + 1]!;
      const dataDir = join(root, name);
      const args = memberArgs({
        name,
        dataDir,
        listenClient: `${scheme}://127.0.0.1:${clientPort}${unixSockets ? `,${clientTls ? "unixs" : "unix"}://${dataDir}.sock` : ""}`,
        advertiseClient: `${scheme}://127.0.0.1:${clientPort}`,
        peerUrl: `http://127.0.0.1:${peerPort}`,
        initialCluster,
        token,
        noFsync,
        extraArgs: [...tlsArgs, ...extraArgs],
      });
      return new EtcdMember(binary, { name, clientPort, peerPort, dataDir, args, tls: clientTls });
    });
    if (restore) {
      const [only] = members;
      await promisify(execFile)(restore.etcdutl, [
        "snapshot",
        "restore",
        restore.snapshot,
        `--name=${only!.name}`,
        `--data-dir=${join(root, only!.name)}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        `--initial-advertise-peer-urls=${only!.peerUrl}`,
      ]);
    }
    for (const m of members) m.spawn();
    return new EtcdCluster(members, root);
  }

  /**
   * Members whose clients reach them through fault proxies: on loopback ports, or (peerNamespaces)
   * each in a network namespace of its own, serving clients on a unix socket and peers on the
   * peer network's address.
   */
  private static async startBehindProxies({ binary, size = 1, extraArgs = [], noFsync = true, peerNamespaces = false }: ClusterOptions): Promise<EtcdCluster> {
    if (peerNamespaces) {
      const unavailable = await peerNetworkUnavailable();
      if (unavailable) throw new Error(`no peer namespaces on this machine: ${unavailable}`);
    }
    const root = await mkdtemp(join(dataRoot(), "etcd-sdk-test-"));
    const network = peerNamespaces ? await PeerNetwork.create(size) : undefined;
    const ports = network ? [] : await freePorts(size * 2);
    const names = Array.from({ length: size }, (_, i) => `m${i}`);
    const proxies: FaultProxy[] = [];
    try {
      const layout = names.map((name, i) => {
        const dataDir = join(root, name);
        const socketPath = `${dataDir}.sock`;
        const peerUrl = network ? `http://${network.address(i)}:2380` : `http://127.0.0.1:${ports[2 * i + 1]}`;
        const listen = network ? `unix://${socketPath}` : `http://127.0.0.1:${ports[2 * i]}`;
        return { name, dataDir, socketPath, peerUrl, listen, ownPort: ports[2 * i] };
      });
      for (const member of layout) proxies.push(await FaultProxy.start(network ? { path: member.socketPath } : { port: member.ownPort! }));
      const token = `etcd-sdk-${randomBytes(6).toString("hex")}`;
      const initialCluster = layout.map((m) => `${m.name}=${m.peerUrl}`).join(",");
      const members = layout.map((m, i) => {
        const proxy = proxies[i]!;
        const args = memberArgs({ ...m, listenClient: m.listen, advertiseClient: `http://${proxy.endpoint}`, initialCluster, token, noFsync, extraArgs });
        return new EtcdMember(binary, {
          name: m.name,
          clientPort: proxy.port,
          peerPort: network ? 2380 : ports[2 * i + 1]!,
          dataDir: m.dataDir,
          args,
          tls: undefined,
          launcher: network?.launcher(i),
          direct: network ? { socketPath: m.socketPath } : { url: m.listen },
          peerUrl: m.peerUrl,
        });
      });
      for (const m of members) m.spawn();
      return new EtcdCluster(members, root, proxies, network);
    } catch (err) {
      await Promise.all(proxies.map((p) => p.close()));
      await network?.close();
      await rm(root, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Starts a new member that joins this cluster. `announce` must first add it through the
   * membership API (as a voting member or a learner) with the peer URL it is given.
   */
  async join(announce: (peerUrl: string) => Promise<void>): Promise<EtcdMember> {
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
    const name = `m${this.members.length}-${randomBytes(3).toString("hex")}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    await announce(peerUrl);
    const first = this.members[0]!;
    const initialCluster = [...this.members.filter((m) => m.running).map((m) => `${m.name}=${m.peerUrl}`), `${name}=${peerUrl}`].join(",");
    const args = first.argsFor({ name, clientPort, peerPort, dataDir: join(this.root, name) }).map((a) =>
      a.startsWith("--initial-cluster=") ? `--initial-cluster=${initialCluster}` : a.startsWith("--initial-cluster-state=") ? "--initial-cluster-state=existing" : a,
    );
    const member = new EtcdMember(first.binaryPath, { name, clientPort, peerPort, dataDir: join(this.root, name), args, tls: undefined });
    this.members.push(member);
    member.spawn();
    await member.waitHealthy();
    return member;
  }

  /** Stops a member removed through the membership API and drops it from the harness's list. */
  async forget(member: EtcdMember): Promise<void> {
    await member.kill();
    await member.removeData();
    this.members.splice(this.members.indexOf(member), 1);
  }

  /** The member that currently leads, asked of the running, unpaused members. */
  async leader(timeoutMs = 10_000): Promise<EtcdMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const candidates = this.members.filter((m) => m.running && !m.isPaused);
      const statuses = await Promise.all(candidates.map((m) => m.status().catch(() => undefined)));
      const leaderId = statuses.find((s) => s && s.leader !== "0")?.leader;
      const index = statuses.findIndex((s) => s?.memberId === leaderId);
      if (leaderId && index >= 0) return candidates[index]!;
      await sleep(100);
    }
    throw new Error(`no leader elected within ${timeoutMs} ms`);
  }

  /** Makes `member` the leader, unless it leads already. */
  async makeLeader(member: EtcdMember): Promise<void> {
    const leader = await this.leader();
    if (leader === member) return;
    await leader.transferLeadership((await member.status()).memberId);
    if ((await this.leader()) !== member) throw new Error(`${member.name} did not take over leadership from ${leader.name}`);
  }

  /** Kills every member and removes the data; safe to call twice. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    await Promise.all(this.proxies.map((p) => p.close()));
    await this.peerNetwork?.close();
    await rm(this.root, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
