export * from "./exports.js";
export { Client } from "./client/client.js";
export { DiscoveryError, discoverEndpoints, type DiscoveryOptions, type SrvRecord, type SrvResolver } from "./client/discovery.js";
