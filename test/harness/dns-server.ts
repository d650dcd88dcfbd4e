/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP) for tests of SRV discovery: it answers SRV
 * questions for the names it is given and nothing else, so a real `dns.promises.Resolver` pointed at
 * it with `setServers` goes through c-ares, the wire format and Node's parsing, never the network.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";

/** One SRV record as the zone holds it; `target` is a domain name (a trailing dot is allowed). */
export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/**
 * What the server does for a name: answer these records (an empty list is a NODATA answer), or
 * fail with a response code, or never answer (for timeouts). Names the zone lacks are NXDOMAIN.
 */
export type ZoneEntry = SrvAnswer[] | { rcode: "SERVFAIL" | "REFUSED" } | "drop";

/** Response codes by name (RFC 1035 4.1.1). */
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const TYPE_SRV = 33;
const CLASS_IN = 1;
// Without EDNS a UDP answer may not exceed this (RFC 1035 4.2.1); the tests' answers are far smaller.
const MAX_UDP_ANSWER = 512;

export interface TestDnsServer {
  /** "127.0.0.1:<port>", as `Resolver.setServers` takes it. */
  readonly address: string;
  /** Every question asked, "<name> <type>", in order. */
  readonly questions: string[];
  /** Replaces the zone; later questions see the new one. */
  setZone(zone: Record<string, ZoneEntry>): void;
  close(): Promise<void>;
}

/** Lower-case without a trailing dot: DNS names compare case-insensitively. */
function canonical(name: string): string {
  return name.replace(/\.$/, "").toLowerCase();
}

function encodeName(name: string): Buffer {
  const labels = canonical(name) === "" ? [] : name.replace(/\.$/, "").split(".");
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, "ascii");
    if (bytes.length === 0 || bytes.length > 63) throw new Error(`bad DNS label in ${JSON.stringify(name)}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

interface Question {
  id: number;
  recursionDesired: boolean;
  name: string;
  type: number;
  klass: number;
  /** The question section exactly as it came, to echo back byte for byte. */
  raw: Buffer;
}

/** The first question of a query, or undefined for anything this server will not parse. */
function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12) return undefined;
  const flags = msg.readUInt16BE(2);
  const isResponse = (flags & 0x8000) !== 0;
  const opcode = (flags >> 11) & 0xf;
  if (isResponse || opcode !== 0 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = msg[offset];
    if (length === undefined || length > 63) return undefined; // queries carry no compression pointers
    offset += 1;
    if (length === 0) break;
    if (offset + length > msg.length) return undefined;
    labels.push(msg.toString("ascii", offset, offset + length));
    offset += length;
  }
  if (offset + 4 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    recursionDesired: (flags & 0x0100) !== 0,
    name: labels.join("."),
    type: msg.readUInt16BE(offset),
    klass: msg.readUInt16BE(offset + 2),
    raw: msg.subarray(12, offset + 4),
  };
}

function header(q: Question, rcode: number, answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(q.id, 0);
  // QR (a response), AA (authoritative), RD echoed, RA set so no resolver goes looking elsewhere.
  h.writeUInt16BE(0x8000 | 0x0400 | (q.recursionDesired ? 0x0100 : 0) | 0x0080 | rcode, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers, 6);
  return h;
}

function srvRecord(answer: SrvAnswer): Buffer {
  const target = encodeName(answer.target);
  const fixed = Buffer.alloc(12);
  // The owner name points back at the question's name at offset 12 (RFC 1035 4.1.4); the target
  // stays uncompressed, as RFC 2782 requires of it.
  fixed.writeUInt16BE(0xc000 | 12, 0);
  fixed.writeUInt16BE(TYPE_SRV, 2);
  fixed.writeUInt16BE(CLASS_IN, 4);
  fixed.writeUInt32BE(60, 6);
  fixed.writeUInt16BE(6 + target.length, 10);
  const rdata = Buffer.alloc(6);
  rdata.writeUInt16BE(answer.priority, 0);
  rdata.writeUInt16BE(answer.weight, 2);
  rdata.writeUInt16BE(answer.port, 4);
  return Buffer.concat([fixed, rdata, target]);
}

/** The answer to one question, or undefined to stay silent. */
function respond(q: Question, zone: ReadonlyMap<string, ZoneEntry>): Buffer | undefined {
  const entry = zone.get(canonical(q.name));
  if (entry === "drop") return undefined;
  if (entry === undefined) return Buffer.concat([header(q, RCODE.NXDOMAIN, 0), q.raw]);
  if (!Array.isArray(entry)) return Buffer.concat([header(q, RCODE[entry.rcode], 0), q.raw]);
  const answers = q.type === TYPE_SRV && q.klass === CLASS_IN ? entry : [];
  const reply = Buffer.concat([header(q, RCODE.NOERROR, answers.length), q.raw, ...answers.map(srvRecord)]);
  // This server does not truncate: fail loudly rather than send what a resolver must drop.
  return reply.length > MAX_UDP_ANSWER ? Buffer.concat([header(q, RCODE.SERVFAIL, 0), q.raw]) : reply;
}

/** Starts the server on a free UDP port of 127.0.0.1 with `zone` (names without trailing dots). */
export async function startDnsServer(zone: Record<string, ZoneEntry> = {}): Promise<TestDnsServer> {
  let names = new Map(Object.entries(zone).map(([name, entry]) => [canonical(name), entry] as const));
  const questions: string[] = [];
  const socket: Socket = createSocket("udp4");
  socket.on("message", (msg: Buffer, from: RemoteInfo) => {
    const q = parseQuery(msg);
    if (!q) return;
    questions.push(`${q.name} ${q.type === TYPE_SRV ? "SRV" : String(q.type)}`);
    const reply = respond(q, names);
    if (reply) socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve();
    });
  });
  const { port } = socket.address();
  let closed: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${port}`,
    questions,
    setZone(next) {
      names = new Map(Object.entries(next).map(([name, entry]) => [canonical(name), entry] as const));
    },
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
  };
}
