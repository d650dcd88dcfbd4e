import type { NodeClientName } from "../protocol.js";
import type { BenchClient } from "./common.js";

/*
 * Each client's module is loaded only in the worker that runs it, so that no worker's CPU or RSS
 * includes a library it does not use.
 */

export async function connectClient(name: NodeClientName, endpoints: string[]): Promise<BenchClient> {
  switch (name) {
    case "sdk":
      return (await import("./sdk.js")).connectSdk(await import("../../src/index.js"), endpoints, "grpc");
    case "sdk-http2":
      // The entry without grpc-js, as a user of this transport would import.
      return (await import("./sdk.js")).connectSdk(await import("../../src/http2.js"), endpoints, "http2");
    case "sdk-gateway":
      return (await import("./sdk.js")).connectSdk(await import("../../src/index.js"), endpoints, "gateway");
    case "etcd3":
      return (await import("./etcd3.js")).connectEtcd3(endpoints);
    case "grpc-js":
      return (await import("./raw-grpc.js")).connectRawGrpc(endpoints);
  }
}

/** Why a client cannot run on this checkout, or undefined when it can. */
export async function whyUnavailable(name: NodeClientName): Promise<string | undefined> {
  switch (name) {
    case "etcd3":
      return (await import("./etcd3.js")).etcd3Missing();
    default:
      return undefined;
  }
}
