/**
 * The Node entry point without @grpc/grpc-js ("etcd-sdk/http2"): the same API over gRPC on
 * node:http2, or over etcd's HTTP gateway.
 */
export * from "./exports.js";
export { Client } from "./client/http2-client.js";
export { DiscoveryError, discoverEndpoints, type DiscoveryOptions, type SrvRecord, type SrvResolver } from "./client/discovery.js";
