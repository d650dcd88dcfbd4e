import type { EtcdCluster } from "../harness/cluster.js";

/** The faults a robustness round injects into one member, each for the round's fault window. */
export const FAULTS = ["kill", "freeze", "blackhole", "reset", "latency", "partition"] as const;
export type FaultName = (typeof FAULTS)[number];

/** What each fault does, for reports. */
export const FAULT_DESCRIPTIONS: Record<FaultName, string> = {
  kill: "member killed (SIGKILL), restarted at the end",
  freeze: "member frozen (SIGSTOP), resumed at the end",
  blackhole: "member's client traffic held in both directions by its proxy, nothing closed",
  reset: "member's client connections reset (RST) every second",
  latency: "200 ms + up to 100 ms jitter on every chunk of the member's client traffic, both ways",
  partition: "member cut off from its peers (packets dropped), its clients still reach it",
};

/** How often the reset fault resets the member's connections. */
const RESET_EVERY_MS = 1000;

/** Injects `fault` into member `target`; resolves with what heals it. */
export async function injectFault(cluster: EtcdCluster, fault: FaultName, target: number): Promise<() => Promise<void>> {
  const member = cluster.members[target]!;
  switch (fault) {
    case "kill":
      await member.kill();
      return () => member.restart();
    case "freeze":
      await member.pause();
      return async () => member.resume();
    case "blackhole":
      cluster.faults(target).blackhole();
      return async () => cluster.faults(target).pass();
    case "reset": {
      const proxy = cluster.faults(target);
      proxy.reset();
      const timer = setInterval(() => proxy.reset(), RESET_EVERY_MS);
      return async () => clearInterval(timer);
    }
    case "latency":
      cluster.faults(target).latency(200, 100);
      return async () => cluster.faults(target).latency(0);
    case "partition":
      await cluster.partitionFromPeers(target);
      return () => cluster.reconnectPeers(target);
  }
}
