/**
 * DNS SRV discovery of etcd's client endpoints, as etcd's `--discovery-srv` (clientv3's srv
 * package). Node only: it resolves through `node:dns`, which browsers and edge runtimes lack, so
 * only the Node entry points export it.
 */
import dnsPromises, { type Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { Status } from "nice-grpc-common";
import { abortable } from "../core/abortable.js";
import { describe } from "../core/bytes.js";
import { checkSignal } from "../core/call-checks.js";
import { CallCanceledError, EndpointError, InvalidArgumentError } from "../core/errors.js";

/**
 * One SRV record as `node:dns` gives it: `name` is the target host. Declared here rather than taken
 * from node:dns so that the package's types need no @types/node.
 */
export interface SrvRecord {
  /** The target host, with or without a trailing dot. */
  name: string;
  /** The port etcd listens on there. */
  port: number;
  /** Lower is tried first. */
  priority: number;
  /** Share among the records of one priority (RFC 2782 weighted random order). */
  weight: number;
}

/**
 * Where SRV records come from: `node:dns`'s `Resolver` (the default) has this shape, and so does an
 * object of your own, for DNS over another channel or for tests. A lookup that finds nothing should
 * reject with code "ENOTFOUND" or "ENODATA", as `node:dns` does.
 */
export interface SrvResolver {
  /** The SRV records of a full name, such as "_etcd-client._tcp.example.com". */
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

/** Options of {@link discoverEndpoints}. */
export interface DiscoveryOptions {
  /**
   * Suffix of the SRV service names, as etcd's `--discovery-srv-name`: with "prod", the names are
   * `_etcd-client-ssl-prod._tcp.<domain>` and `_etcd-client-prod._tcp.<domain>`. Default none.
   */
  serviceName?: string;
  /**
   * Resolves the SRV names. Default: a new `dns.promises.Resolver` with the DNS servers
   * `dns.getServers()` reports (the system's, or what `dns.setServers` set). When you pass your
   * own, an abort does not cancel its queries, as other callers may share it.
   */
  resolver?: SrvResolver;
  /** Gives up the lookup; it then rejects with CallCanceledError whose cause is the signal's reason. */
  signal?: AbortSignal;
}

/**
 * DNS gave no etcd endpoints for the domain: it answered that neither SRV name has usable records
 * (`notFound`), or a lookup failed (a timeout, SERVFAIL, an unreachable DNS server) so whether they
 * exist is unknown. It is an EndpointError, as when no etcd server can be reached, because that is
 * what it means to a caller: nothing reached etcd, and it may come right later (records not yet
 * published, DNS briefly down). An InvalidArgumentError would say the domain was wrong whatever
 * the retries; malformed domains get that one.
 */
export class DiscoveryError extends EndpointError {
  override name = "DiscoveryError";
  /** The domain discovery ran for, without a trailing dot. */
  readonly domain: string;
  /** The SRV names looked up, the https one first. */
  readonly names: readonly string[];
  /** True when DNS answered every name with no usable records; false when a lookup failed. */
  readonly notFound: boolean;

  constructor(message: string, details: { domain: string; names: readonly string[]; notFound: boolean }, options?: ErrorOptions) {
    super(message, Status.UNAVAILABLE, undefined, { ...options, noneReachable: true });
    this.domain = details.domain;
    this.names = details.names;
    this.notFound = details.notFound;
  }
}

/** The name etcd's clientv3 and etcdctl discover client endpoints under. */
const SERVICE = "etcd-client";
// A name in a DNS message is at most 255 bytes; in text without the root dot that leaves 253.
const MAX_NAME = 253;
const MAX_LABEL = 63;
const LABEL = /^[A-Za-z0-9_-]+$/;
// Codes node:dns gives when DNS answered that a name has no records of the type (NXDOMAIN, NODATA).
const NOT_FOUND_CODES: ReadonlySet<unknown> = new Set(["ENOTFOUND", "ENODATA"]);

/**
 * The SRV name for one scheme: etcd marks TLS with "-ssl", then appends `-<serviceName>`
 * (clientv3's srv.GetSRVService).
 */
export function srvName(domain: string, scheme: "https" | "http", serviceName = ""): string {
  const service = `${SERVICE}${scheme === "https" ? "-ssl" : ""}${serviceName === "" ? "" : `-${serviceName}`}`;
  return `_${service}._tcp.${domain}`;
}

/** A host name or IP address that a URL can carry, or why not. */
function hostProblem(host: string): string | undefined {
  if (isIP(host) !== 0) return undefined;
  if (host.length > MAX_NAME) return `is longer than ${MAX_NAME} characters`;
  const bad = host.split(".").find((label) => label.length === 0 || label.length > MAX_LABEL || !LABEL.test(label));
  return bad === undefined ? undefined : `has a label ${JSON.stringify(bad)} that is not a DNS label (1 to ${MAX_LABEL} letters, digits, "-" or "_")`;
}

function checkDomain(domain: unknown): string {
  if (typeof domain !== "string") throw new InvalidArgumentError("domain", `must be a string such as "example.com", got ${describe(domain)}`);
  const shown = JSON.stringify(domain);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(domain)) throw new InvalidArgumentError("domain", `must be a domain name such as "example.com", not a URL: got ${shown}`);
  // One root dot is how a fully qualified name is written; resolveSrv applies no search list, so it changes nothing.
  const relative = domain.endsWith(".") ? domain.slice(0, -1) : domain;
  if (relative === "") throw new InvalidArgumentError("domain", `must be a domain name such as "example.com", got ${shown}`);
  if (isIP(relative) !== 0) throw new InvalidArgumentError("domain", `must be a domain name whose SRV records list etcd, not an IP address: got ${shown}`);
  if (relative.includes(":")) throw new InvalidArgumentError("domain", `must be a bare domain name, without a port (SRV records give the ports): got ${shown}`);
  // An internationalized name is looked up in its ASCII (punycode) form, as DNS stores it.
  const ascii = /^[\x00-\x7f]*$/.test(relative) ? relative : domainToASCII(relative);
  const problem = ascii === "" ? "is not a valid internationalized domain name" : hostProblem(ascii);
  if (problem !== undefined) throw new InvalidArgumentError("domain", `${shown} ${problem}`);
  return ascii;
}

function checkServiceName(serviceName: unknown): string {
  if (serviceName === undefined || serviceName === "") return "";
  if (typeof serviceName !== "string") throw new InvalidArgumentError("serviceName", `must be a string, got ${describe(serviceName)}`);
  // A dot would put the suffix in a label of its own, and the name would no longer be etcd's.
  if (!LABEL.test(serviceName)) throw new InvalidArgumentError("serviceName", `must be letters, digits, "-" or "_" (it becomes part of one DNS label), got ${JSON.stringify(serviceName)}`);
  const longest = srvName("", "https", serviceName).split(".")[0]!;
  if (longest.length > MAX_LABEL) throw new InvalidArgumentError("serviceName", `makes the SRV label ${longest} longer than ${MAX_LABEL} characters`);
  return serviceName;
}

function checkResolver(resolver: unknown): SrvResolver | undefined {
  if (resolver === undefined) return undefined;
  if (typeof resolver === "object" && resolver !== null && typeof (resolver as Partial<SrvResolver>).resolveSrv === "function") return resolver as SrvResolver;
  throw new InvalidArgumentError("resolver", `must be an object with a resolveSrv(name) method, such as dns.promises.Resolver, got ${describe(resolver)}`);
}

/** A resolver of our own, so that an abort may cancel its queries without touching anyone else's. */
function defaultResolver(): Resolver {
  const resolver = new dnsPromises.Resolver();
  // A new Resolver reads the system's servers; this also honours a dns.setServers() of the process.
  // Read through the module object: a named import of getServers stays bound to the resolver that
  // was the default at import, and would miss a later setServers.
  const servers = dnsPromises.getServers();
  if (servers.length > 0) resolver.setServers(servers);
  return resolver;
}

/** How the lookup of one name went. */
type Outcome =
  | { kind: "found"; urls: string[]; skipped: string[] }
  | { kind: "absent"; code: string }
  | { kind: "failed"; error: unknown };

/** The URL of one record, or why it cannot have one. */
function urlOf(record: unknown, scheme: "https" | "http"): { url: string } | { skipped: string } {
  const candidate = record as Partial<SrvRecord> | null;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.name !== "string") return { skipped: `a record that is not an SRV record (${describe(record)})` };
  const { name, port } = candidate;
  // Resolvers differ on the root dot of a target (Go keeps it, node:dns drops it); a URL must not
  // have it, as TLS would check the certificate against "host." and fail.
  const host = name.endsWith(".") ? name.slice(0, -1) : name;
  // RFC 2782: a target of "." says the service is decidedly not available at this domain.
  if (host === "") return { skipped: `target "." (no service)` };
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return { skipped: `${JSON.stringify(name)} with port ${String(port)}` };
  const problem = hostProblem(host);
  if (problem !== undefined) return { skipped: `target ${JSON.stringify(name)}, which ${problem}` };
  return { url: `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}` };
}

/**
 * Records in the order RFC 2782 has clients try them, as Go's resolver returns them to etcd:
 * lowest priority first; within a priority, a weighted random draw, so that clients spread over
 * the targets as the weights say (the client sticks to its first endpoint while it is healthy).
 * `random` returns a number in [0, 1), as Math.random.
 */
export function orderByPriorityAndWeight<T extends { priority: number; weight: number }>(records: readonly T[], random: () => number = Math.random): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const ordered: T[] = [];
  for (const priority of priorities) {
    const group = records.filter((r) => r.priority === priority);
    // RFC 2782 puts weight-0 records first, so they are chosen only when the draw lands on 0.
    const left = [...group.filter((r) => r.weight <= 0), ...group.filter((r) => r.weight > 0)];
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + Math.max(0, r.weight), 0);
      const draw = Math.min(total, Math.floor(random() * (total + 1)));
      let running = 0;
      let chosen = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += Math.max(0, left[i]!.weight);
        if (running >= draw) {
          chosen = i;
          break;
        }
      }
      ordered.push(...left.splice(chosen, 1));
    }
  }
  return ordered;
}

async function lookUp(resolver: SrvResolver, name: string, scheme: "https" | "http"): Promise<Outcome> {
  let records: unknown;
  try {
    records = await resolver.resolveSrv(name);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return NOT_FOUND_CODES.has(code) ? { kind: "absent", code: code as string } : { kind: "failed", error };
  }
  if (!Array.isArray(records)) return { kind: "failed", error: new TypeError(`the resolver answered ${name} with ${describe(records)}, not an array of SRV records`) };
  const urls: string[] = [];
  const skipped: string[] = [];
  const valid = records.filter((record: unknown) => {
    const { priority, weight } = (record ?? {}) as Partial<SrvRecord>;
    if (typeof priority === "number" && typeof weight === "number") return true;
    skipped.push(`a record without priority and weight (${describe(record)})`);
    return false;
  }) as SrvRecord[];
  for (const record of orderByPriorityAndWeight(valid)) {
    const made = urlOf(record, scheme);
    if ("skipped" in made) skipped.push(made.skipped);
    else urls.push(made.url);
  }
  return { kind: "found", urls, skipped };
}

function explain(name: string, outcome: Outcome): string {
  switch (outcome.kind) {
    case "absent":
      return `${name} has no SRV records (${outcome.code})`;
    case "found":
      return outcome.urls.length > 0
        ? `${name} has ${outcome.urls.length} usable SRV records`
        : `${name} has no usable SRV records${outcome.skipped.length > 0 ? ` (skipped ${outcome.skipped.join("; ")})` : ""}`;
    case "failed":
      return `${name} could not be looked up (${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)})`;
  }
}

const hasUsable = (outcome: Outcome) => outcome.kind === "found" && outcome.urls.length > 0;

/**
 * Finds etcd's client endpoints in DNS, as etcd's `--discovery-srv`: the SRV records
 * `_etcd-client-ssl._tcp.<domain>` give https:// endpoints and `_etcd-client._tcp.<domain>` http://
 * ones, each "<scheme>://<target>:<port>", in RFC 2782 order (lowest priority first, weighted
 * random within a priority), targets without their trailing dot, IPv6 addresses in brackets.
 *
 * etcd returns both kinds together; a Client takes endpoints that all use TLS or all do not, so
 * this returns the https endpoints when there are any and the http ones only when DNS answers that
 * there are no https ones. A failed https lookup fails discovery even when http records exist,
 * where etcd would use those: a passing DNS fault must not switch a TLS cluster's clients to
 * plaintext. As in etcd, a failed http lookup does not matter once https endpoints are found.
 * Records whose target is "." (RFC 2782: no service), whose port is 0 or whose target is not a
 * host name are skipped; a URL listed twice is kept once.
 *
 * The result goes straight into a Client's `endpoints`. Discovery runs once: to follow later DNS
 * changes, call it again, or let `autoSyncIntervalMs` follow the cluster's own member list.
 *
 * @throws {@link InvalidArgumentError} naming `domain`, `serviceName`, `resolver` or `signal` when one is malformed.
 * @throws {@link DiscoveryError} (an EndpointError) when DNS gives no endpoints; it names the domain and the names looked up.
 * @throws {@link CallCanceledError} when `signal` aborts first.
 *
 * @example
 * ```ts check-only
 * import { readFile } from "node:fs/promises";
 * import { Client, discoverEndpoints } from "etcd-sdk";
 *
 * // DNS has _etcd-client-ssl._tcp.example.com. SRV 0 0 2379 etcd-1.example.com. (and one per member)
 * const caPem = await readFile("ca.pem", "utf8");
 * const endpoints = await discoverEndpoints("example.com", { signal: AbortSignal.timeout(5000) });
 * const client = await Client.connect({ endpoints, tls: { ca: caPem } });
 * ```
 */
export async function discoverEndpoints(domain: string, options: DiscoveryOptions = {}): Promise<string[]> {
  const name = checkDomain(domain);
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("options", `must be an object, got ${describe(options)}`);
  const serviceName = checkServiceName(options.serviceName);
  const given = checkResolver(options.resolver);
  const signal = checkSignal(options.signal, "signal");
  const names = [srvName(name, "https", serviceName), srvName(name, "http", serviceName)] as const;
  if (names[0].length > MAX_NAME) throw new InvalidArgumentError("domain", `${JSON.stringify(domain)} is too long: the SRV name ${names[0]} would exceed ${MAX_NAME} characters`);
  const canceled = (reason: unknown) => new CallCanceledError(`discovery of etcd endpoints for ${JSON.stringify(name)} was canceled by its AbortSignal`, { cause: reason });
  if (signal?.aborted) throw canceled(signal.reason);

  let own: Resolver | undefined;
  const resolver: SrvResolver = given ?? (own = defaultResolver());
  const cancelOwn = () => own?.cancel();
  signal?.addEventListener("abort", cancelOwn, { once: true });
  let outcomes: [Outcome, Outcome];
  try {
    // Both at once, as one slow answer should not add to the other's wait; lookUp never rejects.
    outcomes = await abortable(signal, Promise.all([lookUp(resolver, names[0], "https"), lookUp(resolver, names[1], "http")]));
  } catch (reason) {
    throw canceled(reason);
  } finally {
    signal?.removeEventListener("abort", cancelOwn);
  }

  const [secure, plain] = outcomes;
  const chosen = hasUsable(secure) ? secure : secure.kind !== "failed" && hasUsable(plain) ? plain : undefined;
  if (chosen?.kind === "found") return [...new Set(chosen.urls)];

  const failures = outcomes.flatMap((o) => (o.kind === "failed" ? [o.error] : []));
  const notFound = failures.length === 0;
  const why = `${explain(names[0], secure)}; ${explain(names[1], plain)}`;
  const message = notFound
    ? `DNS lists no etcd endpoints for ${JSON.stringify(name)}: ${why}`
    : secure.kind === "failed" && hasUsable(plain)
      ? `DNS SRV discovery for ${JSON.stringify(name)} failed: ${why}; the http endpoints are not used while it is unknown whether https ones exist`
      : `DNS SRV discovery for ${JSON.stringify(name)} failed: ${why}`;
  const cause = failures.length === 0 ? undefined : failures.length === 1 ? failures[0] : new AggregateError(failures, "both SRV lookups failed");
  throw new DiscoveryError(message, { domain: name, names, notFound }, cause === undefined ? undefined : { cause });
}
