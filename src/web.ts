/**
 * The entry point for browsers and edge runtimes ("etcd-sdk/web"): the same API over etcd's
 * HTTP/JSON gateway with fetch, importing no Node built-ins and not @grpc/grpc-js.
 */
export * from "./exports.js";
export { Client } from "./client/web-client.js";
