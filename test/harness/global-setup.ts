import type { TestProject } from "vitest/node";
import { etcdVersion, resolveEtcdBinary } from "./etcd-binary.js";

declare module "vitest" {
  export interface ProvidedContext {
    etcdBinary: string;
    etcdVersion: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const binary = await resolveEtcdBinary();
  const version = await etcdVersion(binary);
  console.log(`etcd ${version} from ${binary}`);
  project.provide("etcdBinary", binary);
  project.provide("etcdVersion", version);
}
