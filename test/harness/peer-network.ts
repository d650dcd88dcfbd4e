import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The subnet of every cluster's peer network; it exists only inside the members' namespaces, so clusters never clash. */
const PEER_SUBNET = "10.77.0";
/** Each namespace's end of its member's peer link. */
const PEER_DEVICE = "peer0";
const NAMESPACE_PREFIX = "etcd-sdk-";

/** Every network made by this process, torn down at exit if a test did not. */
const liveNetworks = new Set<PeerNetwork>();
process.once("exit", () => {
  for (const network of liveNetworks) network.closeSync();
});

let availability: Promise<string | undefined> | undefined;

/**
 * Whether this machine lets the harness put members in network namespaces (root, and iproute2's
 * `ip`): undefined if so, else why not.
 */
export function peerNetworkUnavailable(): Promise<string | undefined> {
  availability ??= (async () => {
    if (process.platform !== "linux") return "network namespaces need Linux";
    if (process.getuid?.() !== 0) return "network namespaces need root";
    const probe = `${NAMESPACE_PREFIX}probe-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      await run("ip", ["netns", "add", probe]);
      await run("ip", ["netns", "del", probe]);
      return undefined;
    } catch (err) {
      return `ip netns does not work here: ${err instanceof Error ? err.message : String(err)}`;
    }
  })();
  return availability;
}

/** Whether a process with this id runs (a network named after a dead one was left behind). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes networks whose test process died without tearing them down (SIGKILL, a crash). */
async function removeAbandoned(): Promise<void> {
  const { stdout } = await run("ip", ["netns", "list"]);
  const abandoned = new Set<string>();
  for (const line of stdout.split("\n")) {
    const match = /^etcd-sdk-(\d+)-([0-9a-f]{6})-m\d+/.exec(line);
    if (!match || alive(Number(match[1]))) continue;
    await run("ip", ["netns", "del", match[0]]).catch(() => undefined);
    abandoned.add(match[2]!);
  }
  for (const id of abandoned) await run("ip", ["link", "del", `esb${id}`]).catch(() => undefined);
}

/**
 * The members' peer traffic on a network of its own: each member runs in a network namespace
 * whose only interface (besides loopback) is a veth pair to a bridge in the root namespace.
 * Clients reach the members through unix sockets, which no namespace hides, so cutting a member's
 * link to the bridge partitions it from its peers while its clients still reach it. A cut link
 * drops packets silently: peers see no reset, only silence, as on a real partition.
 */
export class PeerNetwork {
  private closed = false;

  private constructor(
    private readonly id: string,
    readonly size: number,
  ) {}

  /** Makes the bridge and one namespace per member; call peerNetworkUnavailable() first. */
  static async create(size: number): Promise<PeerNetwork> {
    if (size > 9) throw new RangeError(`a peer network takes at most 9 members, not ${size}`);
    await removeAbandoned();
    const network = new PeerNetwork(randomBytes(3).toString("hex"), size);
    liveNetworks.add(network);
    try {
      await run("ip", ["link", "add", network.bridge, "type", "bridge"]);
      await run("ip", ["link", "set", network.bridge, "up"]);
      for (let i = 0; i < size; i++) {
        const ns = network.namespace(i);
        await run("ip", ["netns", "add", ns]);
        await run("ip", ["link", "add", network.link(i), "type", "veth", "peer", "name", PEER_DEVICE, "netns", ns]);
        await run("ip", ["link", "set", network.link(i), "master", network.bridge, "up"]);
        await run("ip", ["-n", ns, "addr", "add", `${network.address(i)}/24`, "dev", PEER_DEVICE]);
        await run("ip", ["-n", ns, "link", "set", PEER_DEVICE, "up"]);
        await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      }
    } catch (err) {
      await network.close();
      throw err;
    }
    return network;
  }

  private get bridge(): string {
    return `esb${this.id}`;
  }

  /** The root namespace's end of member i's link (interface names have at most 15 characters). */
  private link(i: number): string {
    return `esp${this.id}${i}`;
  }

  /** The namespace of member i, named after this process so that a later run can remove it if this one dies. */
  namespace(i: number): string {
    return `${NAMESPACE_PREFIX}${process.pid}-${this.id}-m${i}`;
  }

  /** Member i's address on the peer network. */
  address(i: number): string {
    return `${PEER_SUBNET}.${i + 2}`;
  }

  /** What runs a command inside member i's namespace (`ip netns exec` execs it: its pid is the command's). */
  launcher(i: number): string[] {
    return ["ip", "netns", "exec", this.namespace(i)];
  }

  /** Cuts member i's link: its peer packets are dropped in both directions, its clients still reach it. */
  async cut(i: number): Promise<void> {
    await run("ip", ["link", "set", this.link(i), "down"]);
  }

  /** Restores member i's link. */
  async restore(i: number): Promise<void> {
    await run("ip", ["link", "set", this.link(i), "up"]);
  }

  /**
   * The commands that tear the network down: the links (a namespace goes only once nothing in it
   * is left, and sockets of killed members can linger a while), the namespaces, the bridge.
   */
  private teardown(): string[][] {
    const members = Array.from({ length: this.size }, (_, i) => i);
    return [...members.map((i) => ["link", "del", this.link(i)]), ...members.map((i) => ["netns", "del", this.namespace(i)]), ["link", "del", this.bridge]];
  }

  /** Removes the namespaces and the bridge; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    liveNetworks.delete(this);
    for (const args of this.teardown()) await run("ip", args).catch(() => undefined);
  }

  /** close() for the exit handler, which cannot wait for promises. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const args of this.teardown()) {
      try {
        execFileSync("ip", args, { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
  }
}
