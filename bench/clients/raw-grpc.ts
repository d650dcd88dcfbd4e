import { createRequire } from "node:module";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from "../../gen/etcdserverpb/rpc.js";
import { type BenchClient, inParallel, revokeAll } from "./common.js";

// The @grpc/grpc-js the SDK itself runs on (the top level's), not the copy npm etcd3 brought into
// bench/node_modules: the ceiling is the same transport with nothing on top.
const fromTopLevel = createRequire(new URL("../../package.json", import.meta.url));
const grpc = fromTopLevel("@grpc/grpc-js") as typeof import("@grpc/grpc-js");

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

/** A method's path with the (de)serializers grpc-js wants, built once rather than per call. */
interface Method<Req, Res> {
  path: string;
  serialize: (request: Req) => Buffer;
  deserialize: (bytes: Buffer) => Res;
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

function method<Req, Res>(path: string, request: Codec<Req>, response: Codec<Res>): Method<Req, Res> {
  return { path, serialize: (m) => toBuffer(request.encode(m).finish()), deserialize: (b) => response.decode(b) };
}

const KV_PUT = method("/etcdserverpb.KV/Put", PutRequest, PutResponse);
const KV_RANGE = method("/etcdserverpb.KV/Range", RangeRequest, RangeResponse);
const KV_TXN = method("/etcdserverpb.KV/Txn", TxnRequest, TxnResponse);
const WATCH = method("/etcdserverpb.Watch/Watch", WatchRequest, WatchResponse);
const LEASE_GRANT = method("/etcdserverpb.Lease/LeaseGrant", LeaseGrantRequest, LeaseGrantResponse);
const LEASE_REVOKE = method("/etcdserverpb.Lease/LeaseRevoke", LeaseRevokeRequest, LeaseRevokeResponse);
const LEASE_KEEPALIVE = method("/etcdserverpb.Lease/LeaseKeepAlive", LeaseKeepAliveRequest, LeaseKeepAliveResponse);

const PUT_DEFAULTS = PutRequest.fromPartial({});
const RANGE_DEFAULTS = RangeRequest.fromPartial({});
const utf8 = new TextEncoder();

/** A bare grpc-js client: one channel, the generated codecs, no middleware, no conversions. */
export async function connectRawGrpc(endpoints: string[]): Promise<BenchClient> {
  const address = endpoints[0]!.replace(/^https?:\/\//, "");
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));

  const unary = <Req, Res>(m: Method<Req, Res>, request: Req) =>
    new Promise<Res>((resolve, reject) =>
      client.makeUnaryRequest(m.path, m.serialize, m.deserialize, request, (err, response) => (err || !response ? reject(err) : resolve(response))),
    );
  const putRequest = (key: string, value: Uint8Array): PutRequest => ({ ...PUT_DEFAULTS, key: utf8.encode(key), value });

  return {
    async put(key, value) {
      await unary(KV_PUT, putRequest(key, value));
    },
    async get(key, serializable) {
      const response = await unary(KV_RANGE, { ...RANGE_DEFAULTS, key: utf8.encode(key), serializable });
      return response.kvs[0]?.value;
    },
    async casPut(key, value) {
      const compare = {
        result: Compare_CompareResult.GREATER,
        target: Compare_CompareTarget.VERSION,
        key: utf8.encode(key),
        targetUnion: { $case: "version" as const, version: 0n },
        rangeEnd: new Uint8Array(0),
      };
      const success = [{ request: { $case: "requestPut" as const, requestPut: putRequest(key, value) } }];
      return (await unary(KV_TXN, { compare: [compare], success, failure: [] })).succeeded;
    },
    async watchKeys(keys, onPut) {
      const stream = client.makeBidiStreamRequest(WATCH.path, WATCH.serialize, WATCH.deserialize);
      let created = 0;
      const allCreated = new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.on("data", (response: WatchResponse) => {
          if (response.created && ++created === keys.length) resolve();
          for (const event of response.events) if (event.kv) onPut(event.kv.value);
        });
      });
      for (const key of keys) {
        const createRequest = { key: utf8.encode(key), rangeEnd: new Uint8Array(0), startRevision: 0n, progressNotify: false, filters: [], prevKv: false, watchId: 0n, fragment: false };
        stream.write({ requestUnion: { $case: "createRequest", createRequest } });
      }
      await allCreated;
      return {
        async close() {
          stream.removeAllListeners("error").on("error", () => undefined);
          stream.cancel();
        },
      };
    },
    async keepAliveLeases(count, ttlSeconds, concurrency) {
      const stream = client.makeBidiStreamRequest(LEASE_KEEPALIVE.path, LEASE_KEEPALIVE.serialize, LEASE_KEEPALIVE.deserialize);
      stream.on("data", () => undefined).on("error", () => undefined);
      const ids: bigint[] = [];
      await inParallel(count, concurrency, async () => {
        const { ID } = await unary(LEASE_GRANT, { TTL: BigInt(ttlSeconds), ID: 0n });
        ids.push(ID);
        stream.write({ ID });
      });
      // Every lease renewed a third of its TTL apart, as the other clients do.
      const timer = setInterval(() => {
        for (const ID of ids) stream.write({ ID });
      }, (ttlSeconds * 1000) / 3);
      return {
        async close() {
          // Renewals go on until every revoke is answered, as the other clients keep each lease until its own.
          const gone = await revokeAll(ids.length, concurrency, (i) => unary(LEASE_REVOKE, { ID: ids[i]! }));
          clearInterval(timer);
          stream.end();
          return gone;
        },
      };
    },
    async close() {
      client.close();
    },
  };
}
