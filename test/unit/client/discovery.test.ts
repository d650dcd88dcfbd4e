import { Resolver } from "node:dns/promises";
import { describe, expect, it } from "vitest";
import { DiscoveryError, discoverEndpoints, orderByPriorityAndWeight, type SrvRecord, type SrvResolver } from "../../../src/client/discovery.js";
import { CallCanceledError, EndpointError, InvalidArgumentError } from "../../../src/core/errors.js";

/*
 * Discovery against a scripted resolver: each SRV name answers records, fails with a node:dns
 * code, or never answers. test/integration/discovery.test.ts runs the same function through a real
 * dns.promises.Resolver and a DNS server on loopback.
 */

type Answer = SrvRecord[] | { code: string } | "pending" | unknown;

/** A node:dns-style error: what Resolver.resolveSrv rejects with. */
function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`querySrv ${code} ${name}`), { code, hostname: name, syscall: "querySrv" });
}

/** Names absent from `answers` are NXDOMAIN, as a real server would say. */
function scripted(answers: Record<string, Answer>): SrvResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolveSrv(name: string) {
      asked.push(name);
      const answer = name in answers ? answers[name] : { code: "ENOTFOUND" };
      if (answer === "pending") return new Promise<SrvRecord[]>(() => {});
      if (typeof answer === "object" && answer !== null && "code" in answer && !Array.isArray(answer)) return Promise.reject(dnsError(String(answer.code), name));
      return Promise.resolve(answer as SrvRecord[]);
    },
  };
}

const srv = (name: string, port: number, priority = 0, weight = 0): SrvRecord => ({ name, port, priority, weight });

const SSL = "_etcd-client-ssl._tcp.example.com";
const PLAIN = "_etcd-client._tcp.example.com";

async function failure(promise: Promise<unknown>): Promise<Error> {
  const result = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in result)) throw new Error(`expected a rejection, got ${JSON.stringify(result.value)}`);
  expect(result.error).toBeInstanceOf(Error);
  return result.error as Error;
}

describe("discoverEndpoints", () => {
  describe("which records", () => {
    it("looks up etcd's two names and makes https URLs of the -ssl records", async () => {
      const resolver = scripted({ [SSL]: [srv("etcd-1.example.com", 2379, 0), srv("etcd-2.example.com", 2379, 1)] });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["https://etcd-1.example.com:2379", "https://etcd-2.example.com:2379"]);
      expect(resolver.asked.sort()).toEqual([SSL, PLAIN].sort());
    });

    it("makes http URLs of the plain records when there are no -ssl ones (NXDOMAIN or NODATA)", async () => {
      for (const absent of [{ code: "ENOTFOUND" }, { code: "ENODATA" }, []]) {
        const resolver = scripted({ [SSL]: absent, [PLAIN]: [srv("etcd-1.example.com", 2379, 0), srv("etcd-2.example.com", 22379, 1)] });
        expect(await discoverEndpoints("example.com", { resolver })).toEqual(["http://etcd-1.example.com:2379", "http://etcd-2.example.com:22379"]);
      }
    });

    it("takes only the https endpoints when both kinds exist, as a Client needs them all alike", async () => {
      const resolver = scripted({ [SSL]: [srv("secure.example.com", 2379)], [PLAIN]: [srv("plain.example.com", 2379)] });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["https://secure.example.com:2379"]);
    });

    it("appends the service name to both names, as etcd's --discovery-srv-name", async () => {
      const resolver = scripted({
        "_etcd-client-ssl-prod._tcp.example.com": [srv("p.example.com", 2379)],
        [SSL]: [srv("wrong.example.com", 2379)],
      });
      expect(await discoverEndpoints("example.com", { resolver, serviceName: "prod" })).toEqual(["https://p.example.com:2379"]);
      expect(resolver.asked.sort()).toEqual(["_etcd-client-prod._tcp.example.com", "_etcd-client-ssl-prod._tcp.example.com"]);

      const plain = scripted({ "_etcd-client-prod._tcp.example.com": [srv("p.example.com", 2379)] });
      expect(await discoverEndpoints("example.com", { resolver: plain, serviceName: "prod" })).toEqual(["http://p.example.com:2379"]);
    });

    it("takes node's own dns.promises.Resolver where a resolver goes", () => {
      // A compile-time check above all: SrvResolver is declared without @types/node, and must still fit it.
      const resolver: SrvResolver = new Resolver();
      expect(typeof resolver.resolveSrv).toBe("function");
    });

    it("treats an empty service name as none, as etcd's flag default", async () => {
      const resolver = scripted({ [PLAIN]: [srv("a.example.com", 2379)] });
      expect(await discoverEndpoints("example.com", { resolver, serviceName: "" })).toEqual(["http://a.example.com:2379"]);
      expect(resolver.asked.sort()).toEqual([PLAIN, SSL].sort());
    });

    it("keeps the https endpoints when only the http lookup failed, as etcd does", async () => {
      const resolver = scripted({ [SSL]: [srv("a.example.com", 2379)], [PLAIN]: { code: "ETIMEOUT" } });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["https://a.example.com:2379"]);
    });
  });

  describe("targets and ports", () => {
    it("drops the trailing dot of a target and accepts a fully qualified domain", async () => {
      const resolver = scripted({ [SSL]: [srv("etcd-1.example.com.", 2379, 0), srv("etcd-2.example.com", 2380, 1)] });
      expect(await discoverEndpoints("example.com.", { resolver })).toEqual(["https://etcd-1.example.com:2379", "https://etcd-2.example.com:2380"]);
      expect(resolver.asked).toContain(SSL);
    });

    it("puts IPv6 targets in brackets and leaves IPv4 ones as they are", async () => {
      const resolver = scripted({ [PLAIN]: [srv("fd00::1", 2379, 0), srv("::1.", 2380, 1), srv("10.0.0.7", 2381, 2)] });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["http://[fd00::1]:2379", "http://[::1]:2380", "http://10.0.0.7:2381"]);
    });

    it("skips the no-service target '.', port 0 and targets that are not host names, keeping the rest", async () => {
      const resolver = scripted({
        [SSL]: [srv("", 2379, 0), srv(".", 2379, 0), srv("zero.example.com", 0, 0), srv("bad host/x", 2379, 0), srv("ok.example.com", 2379, 1)],
      });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["https://ok.example.com:2379"]);
    });

    it("falls back to http when every https record says no service, and keeps a URL listed twice once", async () => {
      const resolver = scripted({ [SSL]: [srv(".", 0)], [PLAIN]: [srv("a.example.com", 2379, 0), srv("a.example.com.", 2379, 1), srv("b.example.com", 2379, 2)] });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["http://a.example.com:2379", "http://b.example.com:2379"]);
    });
  });

  describe("order", () => {
    it("puts lower priorities first, whatever order DNS answered in", async () => {
      const resolver = scripted({ [SSL]: [srv("c.example.com", 2379, 30, 5), srv("a.example.com", 2379, 10, 0), srv("b.example.com", 2379, 20, 100)] });
      expect(await discoverEndpoints("example.com", { resolver })).toEqual(["https://a.example.com:2379", "https://b.example.com:2379", "https://c.example.com:2379"]);
    });

    it("returns every record of a priority, whatever the draw", async () => {
      const records = [srv("a", 1, 0, 10), srv("b", 1, 0, 0), srv("c", 1, 0, 30), srv("d", 1, 1, 0)];
      for (const fixed of [0, 0.25, 0.5, 0.999999]) {
        const ordered = orderByPriorityAndWeight(records, () => fixed);
        expect(ordered.map((r) => r.name).sort()).toEqual(["a", "b", "c", "d"]);
        expect(ordered[3]!.name).toBe("d");
      }
    });

    it("draws within a priority as RFC 2782 says: zero weights first on a draw of 0, else by running sums", () => {
      const records = [srv("ten", 1, 0, 10), srv("zero", 1, 0, 0), srv("thirty", 1, 0, 30)];
      // Sums in RFC order (zero weight first): zero 0, ten 10, thirty 40. A draw of 0 takes "zero".
      expect(orderByPriorityAndWeight(records, () => 0).map((r) => r.name)).toEqual(["zero", "ten", "thirty"]);
      // A draw of 40 (the top of [0, 40]) takes "thirty"; of the rest (sum 10), the top takes "ten".
      expect(orderByPriorityAndWeight(records, () => 0.9999).map((r) => r.name)).toEqual(["thirty", "ten", "zero"]);
      // floor(0.5 * 41) = 20 lands in thirty's span (10, 40]; then floor(0.5 * 11) = 5 lands in ten's.
      expect(orderByPriorityAndWeight(records, () => 0.5).map((r) => r.name)).toEqual(["thirty", "ten", "zero"]);
      // floor(0.2 * 41) = 8 lands in ten's span (0, 10]; then floor(0.2 * 31) = 6 passes zero's 0.
      expect(orderByPriorityAndWeight(records, () => 0.2).map((r) => r.name)).toEqual(["ten", "thirty", "zero"]);
    });

    it("puts a target first about as often as its share of the weight", () => {
      // A fixed-seed generator keeps the test deterministic.
      let seed = 42;
      const random = () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed / 2 ** 32;
      };
      const records = [srv("light", 1, 0, 1), srv("heavy", 1, 0, 3)];
      let heavyFirst = 0;
      const runs = 4000;
      for (let i = 0; i < runs; i++) if (orderByPriorityAndWeight(records, random)[0]!.name === "heavy") heavyFirst++;
      // RFC 2782's draw over [0, 4] gives "heavy" 3 of 5 values.
      expect(heavyFirst / runs).toBeGreaterThan(0.55);
      expect(heavyFirst / runs).toBeLessThan(0.65);
    });

    it("keeps DNS's order among records of one priority with no weight", () => {
      const records = [srv("x", 1, 5, 0), srv("y", 1, 5, 0), srv("z", 1, 5, 0)];
      expect(orderByPriorityAndWeight(records, () => 0.7).map((r) => r.name)).toEqual(["x", "y", "z"]);
    });
  });

  describe("errors", () => {
    it("fails with a DiscoveryError (an EndpointError) naming the domain and both names when neither has records", async () => {
      const err = await failure(discoverEndpoints("example.com", { resolver: scripted({ [PLAIN]: { code: "ENODATA" } }) }));
      expect(err).toBeInstanceOf(DiscoveryError);
      expect(err).toBeInstanceOf(EndpointError);
      expect(err).not.toBeInstanceOf(InvalidArgumentError);
      const discovery = err as DiscoveryError;
      expect(discovery.notFound).toBe(true);
      expect(discovery.noneReachable).toBe(true);
      expect(discovery.domain).toBe("example.com");
      expect(discovery.names).toEqual([SSL, PLAIN]);
      expect(discovery.message).toContain('"example.com"');
      expect(discovery.message).toContain(`${SSL} has no SRV records (ENOTFOUND)`);
      expect(discovery.message).toContain(`${PLAIN} has no SRV records (ENODATA)`);
    });

    it("says which records it skipped when none was usable", async () => {
      const err = await failure(discoverEndpoints("example.com", { resolver: scripted({ [SSL]: [srv(".", 0)], [PLAIN]: [srv("a.example.com", 0)] }) }));
      expect(err).toBeInstanceOf(DiscoveryError);
      expect((err as DiscoveryError).notFound).toBe(true);
      expect(err.message).toContain(`${SSL} has no usable SRV records (skipped target "." (no service))`);
      expect(err.message).toContain(`${PLAIN} has no usable SRV records (skipped "a.example.com" with port 0)`);
    });

    it("fails when the https lookup failed, even with http records, rather than fall back to plaintext", async () => {
      const err = await failure(discoverEndpoints("example.com", { resolver: scripted({ [SSL]: { code: "ETIMEOUT" }, [PLAIN]: [srv("a.example.com", 2379)] }) }));
      expect(err).toBeInstanceOf(DiscoveryError);
      const discovery = err as DiscoveryError;
      expect(discovery.notFound).toBe(false);
      expect(discovery.message).toContain(`${SSL} could not be looked up (querySrv ETIMEOUT ${SSL})`);
      expect(discovery.message).toContain("the http endpoints are not used");
      expect((discovery.cause as { code?: string }).code).toBe("ETIMEOUT");
    });

    it("fails with the DNS error as cause when there are no https records and the http lookup failed", async () => {
      const err = await failure(discoverEndpoints("example.com", { resolver: scripted({ [PLAIN]: { code: "ESERVFAIL" } }) }));
      expect(err).toBeInstanceOf(DiscoveryError);
      expect((err as DiscoveryError).notFound).toBe(false);
      expect(err.message).toMatch(/^DNS SRV discovery for "example.com" failed: /);
      expect(err.message).toContain(`${SSL} has no SRV records (ENOTFOUND)`);
      expect(err.message).toContain(`${PLAIN} could not be looked up (querySrv ESERVFAIL ${PLAIN})`);
      expect((err.cause as { code?: string }).code).toBe("ESERVFAIL");
    });

    it("gives both DNS errors as an AggregateError when both lookups failed", async () => {
      const err = await failure(discoverEndpoints("example.com", { resolver: scripted({ [SSL]: { code: "ECONNREFUSED" }, [PLAIN]: { code: "EREFUSED" } }) }));
      expect(err).toBeInstanceOf(DiscoveryError);
      expect(err.cause).toBeInstanceOf(AggregateError);
      expect((err.cause as AggregateError).errors.map((e: { code?: string }) => e.code)).toEqual(["ECONNREFUSED", "EREFUSED"]);
    });

    it("counts a resolver that throws or answers something other than records as a failed lookup", async () => {
      const throwing: SrvResolver = {
        resolveSrv(name) {
          if (name === SSL) throw new Error("resolver exploded");
          return Promise.resolve("not records" as unknown as SrvRecord[]);
        },
      };
      const err = await failure(discoverEndpoints("example.com", { resolver: throwing }));
      expect(err).toBeInstanceOf(DiscoveryError);
      expect(err.message).toContain("resolver exploded");
      expect(err.message).toContain("not an array of SRV records");
    });

    it.each([
      ["", /domain must be a domain name/],
      [".", /domain must be a domain name/],
      [42, /domain must be a string .*got number 42/],
      [undefined, /domain must be a string/],
      ["https://example.com", /domain must be a domain name .*not a URL/],
      ["example.com:2379", /domain must be a bare domain name, without a port/],
      ["10.0.0.1", /domain must be a domain name .*not an IP address/],
      ["::1", /domain must be a domain name .*not an IP address/],
      ["a..example.com", /domain "a\.\.example\.com" has a label "" that is not a DNS label/],
      [".example.com", /has a label ""/],
      ["exa mple.com", /has a label "exa mple"/],
      ["bad!.example.com", /has a label "bad!"/],
      [`${"a".repeat(64)}.example.com`, /has a label "a{64}"/],
      [`${"abcdefghi.".repeat(26)}com`, /is longer than 253 characters/],
    ])("refuses the domain %j with an InvalidArgumentError naming it", async (domain, message) => {
      const resolver = scripted({});
      const err = await failure(discoverEndpoints(domain as string, { resolver }));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).argument).toBe("domain");
      expect(err.message).toMatch(message);
      expect(resolver.asked).toEqual([]);
    });

    it("looks up an internationalized domain in its ASCII form", async () => {
      const resolver = scripted({ "_etcd-client._tcp.xn--bcher-kva.example": [srv("a.xn--bcher-kva.example", 2379)] });
      expect(await discoverEndpoints("bücher.example", { resolver })).toEqual(["http://a.xn--bcher-kva.example:2379"]);
    });

    it.each([
      [{ serviceName: "a.b" }, "serviceName", /must be letters, digits/],
      [{ serviceName: 7 }, "serviceName", /must be a string, got number 7/],
      [{ serviceName: "x".repeat(47) }, "serviceName", /longer than 63 characters/],
      [{ resolver: {} }, "resolver", /must be an object with a resolveSrv\(name\) method/],
      [{ resolver: "8.8.8.8" }, "resolver", /resolveSrv/],
      [{ signal: "soon" }, "signal", /must be an AbortSignal/],
    ])("refuses options %j with an InvalidArgumentError naming %s", async (options, argument, message) => {
      const err = await failure(discoverEndpoints("example.com", options as never));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).argument).toBe(argument);
      expect(err.message).toMatch(message);
    });

    it("refuses a domain that fits alone but not under the SRV prefix", async () => {
      const domain = `${"abcdefghi.".repeat(24)}com`; // 243 characters; "_etcd-client-ssl._tcp." adds 22
      const err = await failure(discoverEndpoints(domain, { resolver: scripted({}) }));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).argument).toBe("domain");
      expect(err.message).toMatch(/is too long: the SRV name _etcd-client-ssl\._tcp\..* would exceed 253 characters/);
    });

    it("takes the longest service name that fits in one label", async () => {
      const serviceName = "x".repeat(46);
      const resolver = scripted({ [`_etcd-client-ssl-${serviceName}._tcp.example.com`]: [srv("a.example.com", 2379)] });
      expect(await discoverEndpoints("example.com", { resolver, serviceName })).toEqual(["https://a.example.com:2379"]);
    });

    it("refuses options that are not an object", async () => {
      const err = await failure(discoverEndpoints("example.com", null as never));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).argument).toBe("options");
    });
  });

  describe("cancellation", () => {
    it("fails at once with CallCanceledError for a signal that already fired, asking nothing", async () => {
      const resolver = scripted({});
      const reason = new Error("gave up");
      const err = await failure(discoverEndpoints("example.com", { resolver, signal: AbortSignal.abort(reason) }));
      expect(err).toBeInstanceOf(CallCanceledError);
      expect(err.cause).toBe(reason);
      expect(resolver.asked).toEqual([]);
    });

    it("stops waiting for a resolver that never answers when the signal fires", async () => {
      const controller = new AbortController();
      const resolver = scripted({ [SSL]: "pending", [PLAIN]: "pending" });
      const pending = discoverEndpoints("example.com", { resolver, signal: controller.signal });
      await Promise.resolve();
      expect(resolver.asked.sort()).toEqual([PLAIN, SSL].sort());
      controller.abort("enough");
      const err = await failure(pending);
      expect(err).toBeInstanceOf(CallCanceledError);
      expect(err.message).toBe('discovery of etcd endpoints for "example.com" was canceled by its AbortSignal');
      expect(err.cause).toBe("enough");
    });
  });
});
