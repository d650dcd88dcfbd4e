import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The etcd wire contract the proto tests compare with: the repository's own fixture, or the file
 * ETCD_CONTRACT names (to try a newer etcd's contract before it replaces the fixture).
 */
export const contractPath = process.env.ETCD_CONTRACT
  ? path.resolve(process.env.ETCD_CONTRACT)
  : fileURLToPath(new URL("../fixtures/etcd-v3.7.1-contract.json", import.meta.url));
