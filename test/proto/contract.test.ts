// proto/ is written by hand from the facts of the etcd wire API, so nothing but this test keeps it
// honest: every message, field, enum, service, HTTP route and "since" version is compared with the
// contract recorded for etcd v3.7.1 (test/fixtures/etcd-v3.7.1-contract.json). Each check builds the same
// normalised, sorted shape from both sides so that a failing toEqual shows exactly what differs.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Status } from "nice-grpc-common";
import { beforeAll, describe, expect, it } from "vitest";
import * as errors from "../../src/core/errors.js";
import { serverErrorFor } from "../../src/core/server-error-lookup.js";
import { contractPath } from "./contract-fixture.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bufBin = path.join(repoRoot, "node_modules", ".bin", "buf");

// ---- The contract's shape (see test/fixtures/README.md) ----

interface ContractField {
  name: string;
  number: number;
  /** A scalar ("int64") or a message/enum name as written in etcd's .proto, relative to the message. */
  type: string;
  label?: "repeated" | "map";
  keyType?: string;
  oneof?: string;
  since?: string;
}

interface ContractMessage {
  fields: ContractField[];
  since?: string;
}

/** Per-value versions sit next to `values` as `since_<VALUE>` keys. */
type ContractEnum = { values: Record<string, number> } & { [since: `since_${string}`]: string | undefined };

interface ContractMethod {
  name: string;
  request: string;
  response: string;
  clientStreaming?: boolean;
  serverStreaming?: boolean;
  since?: string;
  http?: string[];
}

interface ContractService {
  methods: ContractMethod[];
}

interface ContractError {
  name: string;
  /** grpc-go's spelling of the code: "InvalidArgument", "Canceled", ... */
  grpcCode: string;
  message: string;
}

interface Contract {
  messages: Record<string, ContractMessage>;
  enums: Record<string, ContractEnum>;
  services: Record<string, ContractService>;
  errors: { list: ContractError[] };
}

// ---- The parts of buf's JSON FileDescriptorSet this test reads ----

const HTTP = "[etcdsdk.http]";
const METHOD_SINCE = "[etcdsdk.method_since]";
const MESSAGE_SINCE = "[etcdsdk.message_since]";
const FIELD_SINCE = "[etcdsdk.field_since]";
const ENUM_VALUE_SINCE = "[etcdsdk.enum_value_since]";

interface FieldDescriptorJson {
  name: string;
  number: number;
  label?: "LABEL_OPTIONAL" | "LABEL_REPEATED" | "LABEL_REQUIRED";
  /** "TYPE_INT64", "TYPE_MESSAGE", ... */
  type: string;
  /** Fully qualified with a leading dot: ".etcdserverpb.RangeRequest.SortOrder". */
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
  options?: { [FIELD_SINCE]?: string };
}

interface EnumValueDescriptorJson {
  name: string;
  number: number;
  options?: { [ENUM_VALUE_SINCE]?: string };
}

interface EnumDescriptorJson {
  name: string;
  value?: EnumValueDescriptorJson[];
}

interface MessageDescriptorJson {
  name: string;
  field?: FieldDescriptorJson[];
  nestedType?: MessageDescriptorJson[];
  enumType?: EnumDescriptorJson[];
  oneofDecl?: { name: string }[];
  options?: { mapEntry?: boolean; [MESSAGE_SINCE]?: string };
}

type IdempotencyLevel = "IDEMPOTENCY_UNKNOWN" | "NO_SIDE_EFFECTS" | "IDEMPOTENT";

interface MethodDescriptorJson {
  name: string;
  inputType: string;
  outputType: string;
  clientStreaming?: boolean;
  serverStreaming?: boolean;
  options?: { idempotencyLevel?: IdempotencyLevel; [HTTP]?: string[]; [METHOD_SINCE]?: string };
}

interface ServiceDescriptorJson {
  name: string;
  method?: MethodDescriptorJson[];
}

interface FileDescriptorJson {
  name: string;
  package?: string;
  messageType?: MessageDescriptorJson[];
  enumType?: EnumDescriptorJson[];
  service?: ServiceDescriptorJson[];
}

interface FileDescriptorSetJson {
  file: FileDescriptorJson[];
}

// ---- Normalised shapes both sides are reduced to ----

/** A field with its type made fully qualified (no leading dot) for message and enum types. */
type NormField = ContractField;

interface NormMessage {
  since?: string;
  fields: NormField[];
}

interface NormEnumValue {
  name: string;
  number: number;
  since?: string;
}

interface NormMethod {
  name: string;
  request: string;
  response: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
  since?: string;
  http: string[];
}

/** Leaves optional keys out instead of setting them to undefined, so diffs show only real keys. */
function compact<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const byNumber = <T extends { number: number; name: string }>(a: T, b: T): number =>
  a.number - b.number || a.name.localeCompare(b.name);
const byName = <T extends { name: string }>(a: T, b: T): number => a.name.localeCompare(b.name);

const SCALARS = new Set([
  "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
  "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
]);

// ---- Contract side ----

/**
 * Resolves a type name the way protoc does: innermost scope first, walking out through enclosing
 * messages and the package, then as already fully qualified. A name that resolves to nothing the
 * contract defines stays as written, so the diff shows it instead of hiding it.
 */
function resolveContractType(type: string, scope: string, known: ReadonlySet<string>): string {
  if (SCALARS.has(type)) return type;
  const parts = scope.split(".");
  for (let n = parts.length; n > 0; n--) {
    const candidate = `${parts.slice(0, n).join(".")}.${type}`;
    if (known.has(candidate)) return candidate;
  }
  return type;
}

function contractMessages(contract: Contract): Record<string, NormMessage> {
  const known = new Set([...Object.keys(contract.messages), ...Object.keys(contract.enums)]);
  const out: Record<string, NormMessage> = {};
  for (const [fullName, msg] of Object.entries(contract.messages)) {
    out[fullName] = compact({
      since: msg.since,
      fields: msg.fields
        .map((f) =>
          compact<NormField>({
            name: f.name,
            number: f.number,
            type: resolveContractType(f.type, fullName, known),
            label: f.label,
            keyType: f.keyType,
            oneof: f.oneof,
            since: f.since,
          }),
        )
        .sort(byNumber),
    });
  }
  return out;
}

function contractEnums(contract: Contract): Record<string, NormEnumValue[]> {
  const out: Record<string, NormEnumValue[]> = {};
  for (const [fullName, e] of Object.entries(contract.enums)) {
    out[fullName] = Object.entries(e.values)
      .map(([name, number]) => compact<NormEnumValue>({ name, number, since: e[`since_${name}`] }))
      .sort(byNumber);
  }
  return out;
}

function contractServices(contract: Contract): Record<string, NormMethod[]> {
  const out: Record<string, NormMethod[]> = {};
  for (const [fullName, svc] of Object.entries(contract.services)) {
    out[fullName] = svc.methods
      .map((m) =>
        compact<NormMethod>({
          name: m.name,
          request: m.request,
          response: m.response,
          clientStreaming: m.clientStreaming ?? false,
          serverStreaming: m.serverStreaming ?? false,
          since: m.since,
          http: m.http ?? [],
        }),
      )
      .sort(byName);
  }
  return out;
}

// ---- Descriptor side ----

/** Files that are tooling, not etcd's API: descriptor.proto and this project's own annotations. */
function isApiFile(file: FileDescriptorJson): boolean {
  return !file.name.startsWith("google/protobuf/") && !file.name.startsWith("etcdsdk/");
}

interface DescriptorIndex {
  apiFiles: FileDescriptorJson[];
  /** API messages by full name, map entry messages left out (the contract folds them into fields). */
  messages: Map<string, MessageDescriptorJson>;
  /** Map entry messages of every file, so map fields can be recognised. */
  mapEntries: Map<string, MessageDescriptorJson>;
  enums: Map<string, EnumDescriptorJson>;
  services: Map<string, ServiceDescriptorJson>;
}

function indexDescriptors(set: FileDescriptorSetJson): DescriptorIndex {
  const index: DescriptorIndex = {
    apiFiles: set.file.filter(isApiFile),
    messages: new Map(),
    mapEntries: new Map(),
    enums: new Map(),
    services: new Map(),
  };
  for (const file of set.file) {
    const api = isApiFile(file);
    const prefix = file.package ? `${file.package}.` : "";
    const walk = (msg: MessageDescriptorJson, scope: string): void => {
      const fullName = `${scope}${msg.name}`;
      if (msg.options?.mapEntry) index.mapEntries.set(fullName, msg);
      else if (api) index.messages.set(fullName, msg);
      for (const e of msg.enumType ?? []) if (api) index.enums.set(`${fullName}.${e.name}`, e);
      for (const nested of msg.nestedType ?? []) walk(nested, `${fullName}.`);
    };
    for (const msg of file.messageType ?? []) walk(msg, prefix);
    if (!api) continue;
    for (const e of file.enumType ?? []) index.enums.set(`${prefix}${e.name}`, e);
    for (const svc of file.service ?? []) index.services.set(`${prefix}${svc.name}`, svc);
  }
  return index;
}

const stripDot = (typeName: string): string => typeName.replace(/^\./, "");

function fieldType(field: FieldDescriptorJson): string {
  if (field.typeName !== undefined) return stripDot(field.typeName);
  return field.type.replace(/^TYPE_/, "").toLowerCase();
}

function descriptorMessages(index: DescriptorIndex): Record<string, NormMessage> {
  const out: Record<string, NormMessage> = {};
  for (const [fullName, msg] of index.messages) {
    out[fullName] = compact({
      since: msg.options?.[MESSAGE_SINCE],
      fields: (msg.field ?? [])
        .map((f) => {
          const entry = f.typeName === undefined ? undefined : index.mapEntries.get(stripDot(f.typeName));
          const key = entry?.field?.find((e) => e.number === 1);
          const value = entry?.field?.find((e) => e.number === 2);
          // A proto3 `optional` field sits in a synthetic oneof that is no oneof on the wire.
          const oneof = f.oneofIndex === undefined || f.proto3Optional ? undefined : msg.oneofDecl?.[f.oneofIndex]?.name;
          return compact<NormField>({
            name: f.name,
            number: f.number,
            type: value ? fieldType(value) : fieldType(f),
            label: entry ? "map" : f.label === "LABEL_REPEATED" ? "repeated" : undefined,
            keyType: key ? fieldType(key) : undefined,
            oneof,
            since: f.options?.[FIELD_SINCE],
          });
        })
        .sort(byNumber),
    });
  }
  return out;
}

function descriptorEnums(index: DescriptorIndex): Record<string, NormEnumValue[]> {
  const out: Record<string, NormEnumValue[]> = {};
  for (const [fullName, e] of index.enums) {
    out[fullName] = (e.value ?? [])
      .map((v) => compact<NormEnumValue>({ name: v.name, number: v.number, since: v.options?.[ENUM_VALUE_SINCE] }))
      .sort(byNumber);
  }
  return out;
}

function descriptorServices(index: DescriptorIndex): Record<string, NormMethod[]> {
  const out: Record<string, NormMethod[]> = {};
  for (const [fullName, svc] of index.services) {
    out[fullName] = (svc.method ?? [])
      .map((m) =>
        compact<NormMethod>({
          name: m.name,
          request: stripDot(m.inputType),
          response: stripDot(m.outputType),
          clientStreaming: m.clientStreaming ?? false,
          serverStreaming: m.serverStreaming ?? false,
          since: m.options?.[METHOD_SINCE],
          http: m.options?.[HTTP] ?? [],
        }),
      )
      .sort(byName);
  }
  return out;
}

/** Methods by "Service.Method" (service without its package), as the idempotency lists name them. */
function methodsByShortName(index: DescriptorIndex): Map<string, MethodDescriptorJson> {
  const out = new Map<string, MethodDescriptorJson>();
  for (const svc of index.services.values()) {
    for (const m of svc.method ?? []) out.set(`${svc.name}.${m.name}`, m);
  }
  return out;
}

// ---- Errors ----

/** grpc-go's code names in the Status enum's spelling: "OutOfRange" -> "OUT_OF_RANGE". */
function statusFor(grpcCode: string): Status | undefined {
  const upper = grpcCode.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
  // Go spells the code Canceled; the gRPC spec, and so nice-grpc, spell it CANCELLED.
  const key = upper === "CANCELED" ? "CANCELLED" : upper;
  const value: unknown = (Status as unknown as Record<string, unknown>)[key];
  return typeof value === "number" ? (value as Status) : undefined;
}

/** Status names read better than numbers in a diff: CANCELLED vs UNAVAILABLE, not 1 vs 14. */
function statusName(code: unknown): unknown {
  return typeof code === "number" ? (Status[code] ?? code) : code;
}

function isServerErrorClass(value: unknown): value is errors.ServerErrorClass {
  return typeof value === "function" && value.prototype instanceof errors.EtcdServerError;
}

const errorExports = errors as unknown as Record<string, unknown>;

// ---- Lists the retry middleware depends on ----

// Safe to retry and to serve from any member: reads only.
const READ_ONLY_METHODS = [
  "KV.Range", "KV.RangeStream", "Lease.LeaseTimeToLive", "Lease.LeaseLeases", "Cluster.MemberList",
  "Maintenance.Status", "Maintenance.Hash", "Maintenance.HashKV", "Auth.AuthStatus", "Auth.UserGet",
  "Auth.UserList", "Auth.RoleGet", "Auth.RoleList", "Election.Leader", "Election.Observe",
];

// Retrying one of these after an ambiguous failure could apply it twice, so none may claim to be
// side-effect free or idempotent.
const STATE_CHANGING_METHODS = [
  "KV.Put", "KV.DeleteRange", "KV.Txn", "KV.Compact",
  "Lease.LeaseGrant", "Lease.LeaseRevoke", "Lease.LeaseKeepAlive",
  "Cluster.MemberAdd", "Cluster.MemberRemove", "Cluster.MemberUpdate", "Cluster.MemberPromote",
  "Maintenance.Alarm", "Maintenance.Defragment", "Maintenance.MoveLeader", "Maintenance.Downgrade",
  "Auth.AuthEnable", "Auth.AuthDisable",
  "Auth.UserAdd", "Auth.UserDelete", "Auth.UserChangePassword", "Auth.UserGrantRole", "Auth.UserRevokeRole",
  "Auth.RoleAdd", "Auth.RoleDelete", "Auth.RoleGrantPermission", "Auth.RoleRevokePermission",
  "Lock.Lock", "Lock.Unlock",
  "Election.Campaign", "Election.Proclaim", "Election.Resign",
];

const ETCD_PACKAGES = ["authpb", "etcdserverpb", "mvccpb", "v3electionpb", "v3lockpb"];

// ---- Tests ----

// Read at collection time so each message, enum and service gets a test of its own.
const contract = JSON.parse(readFileSync(contractPath, "utf8")) as Contract;

describe(`proto/ matches the etcd wire contract (${path.basename(contractPath)})`, () => {
  const want = {
    messages: contractMessages(contract),
    enums: contractEnums(contract),
    services: contractServices(contract),
    errors: contract.errors.list,
  };
  let index: DescriptorIndex;
  let got: { messages: Record<string, NormMessage>; enums: Record<string, NormEnumValue[]>; services: Record<string, NormMethod[]> };

  beforeAll(() => {
    const json = execFileSync(bufBin, ["build", "-o", "-#format=json"], {
      cwd: repoRoot,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
    index = indexDescriptors(JSON.parse(json) as FileDescriptorSetJson);
    got = { messages: descriptorMessages(index), enums: descriptorEnums(index), services: descriptorServices(index) };
  }, 60_000);

  it("defines exactly the contract's messages", () => {
    expect(Object.keys(got.messages).sort()).toEqual(Object.keys(want.messages).sort());
  });

  it.each(Object.keys(want.messages).sort())("message %s: fields and since", (name) => {
    expect(got.messages[name]).toEqual(want.messages[name]);
  });

  it("defines exactly the contract's enums", () => {
    expect(Object.keys(got.enums).sort()).toEqual(Object.keys(want.enums).sort());
  });

  it.each(Object.keys(want.enums).sort())("enum %s: values, numbers and since", (name) => {
    expect(got.enums[name]).toEqual(want.enums[name]);
  });

  it("defines exactly the contract's services", () => {
    expect(Object.keys(got.services).sort()).toEqual(Object.keys(want.services).sort());
  });

  it.each(Object.keys(want.services).sort())("service %s: methods, streaming, since and HTTP routes", (name) => {
    expect(got.services[name]).toEqual(want.services[name]);
  });

  it("puts every file in one of etcd's packages, since the package is part of the method path", () => {
    const packages = index.apiFiles.map((f) => ({ file: f.name, package: f.package ?? "" }));
    expect(packages.filter((p) => !ETCD_PACKAGES.includes(p.package))).toEqual([]);
    expect(packages.length).toBeGreaterThan(0);
  });

  it("marks the read-only methods NO_SIDE_EFFECTS", () => {
    const methods = methodsByShortName(index);
    const levels = Object.fromEntries(
      READ_ONLY_METHODS.map((name) => {
        const m = methods.get(name);
        return [name, m ? (m.options?.idempotencyLevel ?? "IDEMPOTENCY_UNKNOWN") : "(no such method)"];
      }),
    );
    expect(levels).toEqual(Object.fromEntries(READ_ONLY_METHODS.map((name) => [name, "NO_SIDE_EFFECTS"])));
  });

  it("marks no state-changing method NO_SIDE_EFFECTS or IDEMPOTENT", () => {
    const methods = methodsByShortName(index);
    const missing = STATE_CHANGING_METHODS.filter((name) => !methods.has(name));
    expect(missing, "state-changing methods listed here but absent from proto/").toEqual([]);
    const retryable = STATE_CHANGING_METHODS.map((name) => ({
      name,
      level: methods.get(name)?.options?.idempotencyLevel ?? "IDEMPOTENCY_UNKNOWN",
    })).filter((m) => m.level === "NO_SIDE_EFFECTS" || m.level === "IDEMPOTENT");
    expect(retryable).toEqual([]);
  });

  describe("server errors in src/errors.ts", () => {
    it("exports one server error class per contract error and no others", () => {
      const exported = Object.entries(errorExports)
        .filter(([, value]) => isServerErrorClass(value))
        .map(([name]) => name)
        .sort();
      expect(exported).toEqual(want.errors.map((e) => e.name).sort());
      expect(exported).toHaveLength(want.errors.length);
    });

    it("the contract maps every gRPC code name to a Status", () => {
      const unknown = want.errors.filter((e) => statusFor(e.grpcCode) === undefined).map((e) => e.grpcCode);
      expect(unknown).toEqual([]);
    });

    it.each(want.errors)("$name: code $grpcCode, message and serverErrorFor", ({ name, grpcCode, message }) => {
      const cls = errorExports[name];
      expect(isServerErrorClass(cls), `errors.${name} should be an EtcdServerError subclass`).toBe(true);
      if (!isServerErrorClass(cls)) return;
      const code = statusFor(grpcCode);
      expect({ code: statusName(cls.code), serverMessage: cls.serverMessage }).toEqual({
        code: statusName(code),
        serverMessage: message,
      });

      const err = serverErrorFor(message, code ?? Status.UNKNOWN, "x:1");
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(errors.EtcdServerError);
      expect({ name: err.name, serverMessage: err.serverMessage, code: statusName(err.code), endpoint: err.endpoint }).toEqual({
        name,
        serverMessage: message,
        code: statusName(code),
        endpoint: "x:1",
      });
    });

    it("gives a plain EtcdServerError for a message it does not know", () => {
      const err = serverErrorFor("etcdserver: something new", Status.UNKNOWN, "x:1");
      expect(err).toBeInstanceOf(errors.EtcdServerError);
      expect(err.constructor).toBe(errors.EtcdServerError);
      expect(err.name).toBe("EtcdServerError");
      expect(err.serverMessage).toBe("etcdserver: something new");
    });
  });
});
