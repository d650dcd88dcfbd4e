import { TestRunner } from "vitest";
import { MemoryEtcd, type MemoryEtcdOptions } from "../../src/testing.js";
import type { ClientTls, ClusterOptions } from "./cluster.js";

/**
 * Skips the running test, saying what it needs a real etcd for: the in-memory etcd has no
 * process to kill or pause, no peers, no TLS, no auth.
 */
export function needsRealEtcd(what: string): never {
  const test = TestRunner.getCurrentTest();
  if (!test) throw new Error(`the in-memory etcd cannot give ${what}, and no test is running that could be skipped`);
  return test.context.skip(`needs a real etcd: ${what}`);
}

/** A Go duration as etcd's flags take one ("500ms", "2s"), in ms. */
function durationMs(value: string): number {
  const match = /^(\d+)(ms|s)$/.exec(value);
  if (!match) throw new Error(`a duration the memory project cannot read: ${value}`);
  return Number(match[1]) * (match[2] === "s" ? 1000 : 1);
}

/** The etcd flags of the suites that the in-memory etcd has, as its options. */
function optionsFor(extraArgs: string[]): MemoryEtcdOptions {
  const options: MemoryEtcdOptions = {};
  for (const arg of extraArgs) {
    const [flag, value = ""] = arg.split("=", 2);
    switch (flag) {
      case "--watch-progress-notify-interval":
      case "--experimental-watch-progress-notify-interval":
        options.watchProgressNotifyIntervalMs = durationMs(value);
        break;
      case "--max-request-bytes":
        options.maxRequestBytes = Number(value);
        break;
      case "--grpc-keepalive-min-time":
        // No connection to keep alive.
        break;
      default:
        needsRealEtcd(`etcd started with ${arg}`);
    }
  }
  return options;
}

/** A member of an in-memory cluster: what would need its process skips the test. */
class MemoryMember {
  constructor(readonly endpoint: string) {}

  get clientUrl(): string {
    return needsRealEtcd("a member's HTTP endpoint");
  }

  kill(): Promise<void> {
    return needsRealEtcd("a member to kill");
  }

  pause(): Promise<void> {
    return needsRealEtcd("a member to pause (SIGSTOP)");
  }

  resume(): void {
    needsRealEtcd("a member to resume (SIGCONT)");
  }

  restart(): Promise<void> {
    return needsRealEtcd("a member to restart");
  }
}

/**
 * An in-memory etcd standing in for an EtcdCluster of one member in the "memory" project, so that
 * the suites written for real etcd run on it unchanged: `clientFor` gives its clients, and what
 * needs etcd processes (members to kill or pause, peers, TLS, auth) skips the test, saying why.
 */
export class MemoryCluster implements AsyncDisposable {
  readonly members: MemoryMember[];

  constructor(readonly etcd: MemoryEtcd) {
    this.members = [new MemoryMember(etcd.endpoint)];
  }

  /** Starts an in-memory etcd for a suite's startCluster(), or skips the test if it asks for what it has not. */
  static start(size: number, extraArgs: string[], clientTls: ClientTls | undefined, restore: ClusterOptions["restore"], unixSockets: boolean): MemoryCluster {
    if (size > 1) needsRealEtcd(`a cluster of ${size} members`);
    if (clientTls) needsRealEtcd("TLS");
    if (restore) needsRealEtcd("a snapshot restored");
    if (unixSockets) needsRealEtcd("unix sockets");
    return new MemoryCluster(new MemoryEtcd(optionsFor(extraArgs)));
  }

  get endpoints(): string[] {
    return [this.etcd.endpoint];
  }

  leader(): Promise<MemoryMember> {
    return Promise.resolve(this.members[0]!);
  }

  close(): Promise<void> {
    return this.etcd.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
