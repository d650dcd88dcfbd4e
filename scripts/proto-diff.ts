/**
 * The proto bump helper: lists what differs between this project's proto/ and etcd's own .proto
 * files (an upstream checkout, or a release source tarball), message by message, field by field,
 * enum value by enum value and RPC by RPC, for the packages this project defines.
 *
 *   npm run proto:diff -- <etcd checkout dir | source .tar.gz> [our proto dir]
 *
 * Exits 1 when something differs. etcd's files import gogoproto and googleapis; they are only
 * parsed, never compiled, so those imports need not resolve.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";

const PACKAGES = new Set(["etcdserverpb", "mvccpb", "authpb", "v3lockpb", "v3electionpb"]);
/** etcd files of those packages that hold server-internal messages, not the client API. */
const INTERNAL_FILES = new Set(["raft_internal.proto", "etcdserver.proto"]);

interface Field {
  number: number;
  type: string;
  label: string;
  oneof: string;
}
interface Method {
  request: string;
  response: string;
  streaming: string;
}
export interface ProtoModel {
  messages: Map<string, Map<string, Field>>;
  enums: Map<string, Map<string, number>>;
  methods: Map<string, Method>;
}

type Json = {
  nested?: Record<string, Json>;
  fields?: Record<string, { type: string; id: number; rule?: string; keyType?: string }>;
  oneofs?: Record<string, { oneof: string[] }>;
  values?: Record<string, number>;
  methods?: Record<string, { requestType: string; responseType: string; requestStream?: boolean; responseStream?: boolean }>;
};

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules" || name.startsWith(".")) return [];
    return statSync(path).isDirectory() ? protoFiles(path) : name.endsWith(".proto") && !INTERNAL_FILES.has(name) ? [path] : [];
  });
}

function walk(node: Json, name: string, model: ProtoModel): void {
  if (node.fields) {
    const oneofOf = new Map(Object.entries(node.oneofs ?? {}).flatMap(([o, { oneof }]) => oneof.map((f) => [f, o] as const)));
    const fields = new Map<string, Field>();
    for (const [field, f] of Object.entries(node.fields)) {
      const label = f.keyType ? `map<${f.keyType}>` : (f.rule ?? "");
      fields.set(field, { number: f.id, type: f.type, label, oneof: oneofOf.get(field) ?? "" });
    }
    model.messages.set(name, fields);
  }
  if (node.values) model.enums.set(name, new Map(Object.entries(node.values)));
  for (const [method, m] of Object.entries(node.methods ?? {})) {
    const streaming = `${m.requestStream ? "stream " : ""}request, ${m.responseStream ? "stream " : ""}response`;
    model.methods.set(`${name}/${method}`, { request: m.requestType, response: m.responseType, streaming });
  }
  for (const [child, sub] of Object.entries(node.nested ?? {})) walk(sub, `${name}.${child}`, model);
}

/** The wire-relevant facts of every .proto file under `dir`, for etcd's packages only. */
export function protoModel(dir: string): ProtoModel {
  const model: ProtoModel = { messages: new Map(), enums: new Map(), methods: new Map() };
  for (const file of protoFiles(dir)) {
    const parsed = protobuf.parse(readFileSync(file, "utf8"), { keepCase: true });
    if (!parsed.package || !PACKAGES.has(parsed.package)) continue;
    const json = parsed.root.toJSON() as Json;
    let node: Json | undefined = json;
    for (const part of parsed.package.split(".")) node = node?.nested?.[part];
    for (const [child, sub] of Object.entries(node?.nested ?? {})) walk(sub, `${parsed.package}.${child}`, model);
  }
  return model;
}

function describeField(f: Field): string {
  return `${f.label ? `${f.label} ` : ""}${f.type} = ${f.number}${f.oneof ? ` (oneof ${f.oneof})` : ""}`;
}

/** One line per difference: "+" only upstream, "-" only ours, "~" changed. */
export function diffModels(ours: ProtoModel, upstream: ProtoModel): string[] {
  const lines: string[] = [];
  const compare = <T>(kind: string, a: Map<string, T>, b: Map<string, T>, show: (x: T) => string, inner?: (name: string, x: T, y: T) => void) => {
    for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
      const x = a.get(name);
      const y = b.get(name);
      if (x === undefined) lines.push(`+ ${kind} ${name}${show(y!) ? `: ${show(y!)}` : ""}`);
      else if (y === undefined) lines.push(`- ${kind} ${name}${show(x) ? `: ${show(x)}` : ""}`);
      else if (inner) inner(name, x, y);
      else if (show(x) !== show(y)) lines.push(`~ ${kind} ${name}: ${show(x)} -> ${show(y)}`);
    }
  };
  compare("message", ours.messages, upstream.messages, () => "", (name, x, y) => compare("field", prefixed(name, x), prefixed(name, y), describeField));
  compare("enum", ours.enums, upstream.enums, () => "", (name, x, y) => compare("enum value", prefixed(name, x), prefixed(name, y), String));
  compare("rpc", ours.methods, upstream.methods, (m) => `${m.request} -> ${m.response} (${m.streaming})`);
  return lines;
}

function prefixed<T>(name: string, map: Map<string, T>): Map<string, T> {
  return new Map([...map].map(([k, v]) => [`${name}.${k}`, v]));
}

function main(): void {
  const [source, oursDir = "proto"] = process.argv.slice(2);
  if (!source) {
    console.error("usage: npm run proto:diff -- <etcd checkout dir | source .tar.gz> [our proto dir]");
    process.exit(2);
  }
  let upstreamDir = source;
  let cleanup: string | undefined;
  if (/\.(tar\.gz|tgz)$/.test(source)) {
    cleanup = upstreamDir = mkdtempSync(join(tmpdir(), "etcd-proto-"));
    execFileSync("tar", ["-xzf", source, "-C", upstreamDir]);
  }
  try {
    const lines = diffModels(protoModel(oursDir), protoModel(upstreamDir));
    console.log(lines.length ? lines.join("\n") : "no differences");
    if (lines.length) {
      console.log("\nEdit proto/ to match, then: npm run generate && npm test (and move the buf breaking baseline if the change is wanted).");
      process.exitCode = 1;
    }
  } finally {
    if (cleanup) rmSync(cleanup, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
