export * from "./exports.js";
export { Client } from "./client/client.js";
