import type { TestProject } from "vitest/node";
import { etcdVersion, resolveEtcdBinary } from "./etcd-binary.js";

declare module "vitest" {
  export interface ProvidedContext {
    etcdBinary: string;
    etcdVersion: string;
    /**
     * The transport every client of the suite uses (the suite's folder picks which, see
     * vitest.config.ts), or "memory": the in-memory etcd of etcd-sdk/testing instead of etcd.
     */
    transport: "grpc" | "http2" | "gateway" | "memory";
  }
}

export default async function setup(project: TestProject): Promise<void> {
  // ETCD_SDK_VERSION (e.g. v3.6.16) picks another release to build, for the version matrix.
  // (Not ETCD_VERSION: etcd reads ETCD_* variables as flags.)
  const binary = await resolveEtcdBinary(process.env.ETCD_SDK_VERSION);
  const version = await etcdVersion(binary);
  console.log(`etcd ${version} from ${binary}`);
  project.provide("etcdBinary", binary);
  project.provide("etcdVersion", version);
}
