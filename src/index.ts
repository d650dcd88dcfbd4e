export * from "./api.js";
export { Client } from "./client.js";
