/**
 * What the wires read from the generated definitions at run time, checked against the contract:
 * the gateway route of every method (the gateway wire has no table of its own) and the etcd
 * version that added it (for UnsupportedVersionError).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as rpc from "../../gen/etcdserverpb/rpc.js";
import * as election from "../../gen/v3electionpb/v3election.js";
import * as lock from "../../gen/v3lockpb/v3lock.js";
import { gatewayPath, methodSince } from "../../src/core/annotations.js";
import { contractPath } from "./contract-fixture.js";


interface ContractMethod {
  name: string;
  http?: string[];
  since?: string;
}
const contract = JSON.parse(readFileSync(contractPath, "utf8")) as { services: Record<string, { methods: ContractMethod[] }> };

type Definition = { fullName: string; methods: Record<string, { name: string; options: unknown }> };
const definitions = [rpc, election, lock].flatMap((module) =>
  Object.entries(module)
    .filter(([name]) => name.endsWith("Definition"))
    .map(([, value]) => value as Definition),
);

describe("method options in the generated definitions", () => {
  it("cover every service of the contract", () => {
    expect(definitions.map((d) => d.fullName).sort()).toEqual(Object.keys(contract.services).sort());
  });

  it.each(definitions.map((d) => [d.fullName, d] as const))("%s: gateway route and since version of each method", (fullName, definition) => {
    const wanted = contract.services[fullName]!.methods;
    const got = Object.values(definition.methods).map((m) => ({ name: m.name, path: gatewayPath(m.options), since: methodSince(m.options) }));
    expect(got).toEqual(
      wanted.map((m) => ({ name: m.name, path: m.http?.[0]?.replace(/^POST /, ""), since: m.since && m.since !== "3.4" ? m.since : undefined })),
    );
  });
});
