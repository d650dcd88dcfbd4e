import type { ClientMiddleware } from "nice-grpc-common";
import type {
  Compare,
  DeepPartial,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RangeStreamResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from "../gen/etcdserverpb/rpc.js";
import type { KeyValue } from "../gen/mvccpb/kv.js";
import { prefixEnd } from "../src/core/bytes.js";
import { ErrEmptyKey } from "../src/core/errors.js";
import { asEtcdReturns } from "../src/core/server-error-lookup.js";

function concat(a: Uint8Array, b: Uint8Array | undefined): Uint8Array {
  const out = new Uint8Array(a.length + (b?.length ?? 0));
  out.set(a);
  if (b) out.set(b, a.length);
  return out;
}

/**
 * Moves every key of the KV, Watch and Lease APIs under a prefix and back, as clientv3/namespace
 * does: requests get the prefix in front of keys and range ends ("from this key on" stops at the
 * end of the namespace), responses and watch events get it taken off.
 */
export function namespaceMiddleware(prefix: Uint8Array): ClientMiddleware {
  const end = prefix.length === 0 ? new Uint8Array([0]) : prefixEnd(prefix);
  const key = (k: Uint8Array | undefined) => concat(prefix, k);
  /**
   * The key of an operation on one key. An empty one is refused, as etcd refuses it outside a
   * namespace: with the prefix in front it would name the prefix itself, a key outside the namespace.
   */
  const oneKey = (k: Uint8Array | undefined, end: Uint8Array | undefined) => {
    if ((!k || k.length === 0) && (!end || end.length === 0)) throw asEtcdReturns(ErrEmptyKey);
    return key(k);
  };
  const rangeEnd = (e: Uint8Array | undefined): Uint8Array | undefined => {
    if (!e || e.length === 0) return e;
    return e.length === 1 && e[0] === 0 ? end : concat(prefix, e);
  };
  const strip = (kv: KeyValue | undefined) => {
    if (kv) kv.key = kv.key.subarray(prefix.length);
  };

  const range = (r: DeepPartial<RangeRequest>): DeepPartial<RangeRequest> => ({
    ...r,
    key: oneKey(r.key as Uint8Array, r.rangeEnd as Uint8Array),
    rangeEnd: rangeEnd(r.rangeEnd as Uint8Array),
  });
  const put = (r: DeepPartial<PutRequest>): DeepPartial<PutRequest> => ({ ...r, key: oneKey(r.key as Uint8Array, undefined) });
  const del = (r: DeepPartial<DeleteRangeRequest>): DeepPartial<DeleteRangeRequest> => ({
    ...r,
    key: oneKey(r.key as Uint8Array, r.rangeEnd as Uint8Array),
    rangeEnd: rangeEnd(r.rangeEnd as Uint8Array),
  });
  const cmp = (c: DeepPartial<Compare>): DeepPartial<Compare> => ({ ...c, key: key(c.key as Uint8Array), rangeEnd: rangeEnd(c.rangeEnd as Uint8Array) });
  const requestOp = (o: DeepPartial<RequestOp>): DeepPartial<RequestOp> => {
    const r = o.request;
    switch (r?.$case) {
      case "requestRange":
        return { request: { $case: r.$case, requestRange: range(r.requestRange ?? {}) } };
      case "requestPut":
        return { request: { $case: r.$case, requestPut: put(r.requestPut ?? {}) } };
      case "requestDeleteRange":
        return { request: { $case: r.$case, requestDeleteRange: del(r.requestDeleteRange ?? {}) } };
      case "requestTxn":
        return { request: { $case: r.$case, requestTxn: txn(r.requestTxn ?? {}) } };
      default:
        return o;
    }
  };
  const txn = (t: DeepPartial<TxnRequest>): DeepPartial<TxnRequest> => ({
    compare: t.compare?.map((c) => cmp(c ?? {})),
    success: t.success?.map((o) => requestOp(o ?? {})),
    failure: t.failure?.map((o) => requestOp(o ?? {})),
  });
  const watch = (w: DeepPartial<WatchRequest>): DeepPartial<WatchRequest> => {
    const u = w.requestUnion;
    if (u?.$case !== "createRequest" || !u.createRequest) return w;
    const c = u.createRequest;
    return { requestUnion: { $case: u.$case, createRequest: { ...c, key: key(c.key as Uint8Array), rangeEnd: rangeEnd(c.rangeEnd as Uint8Array) } } };
  };

  const stripRange = (r: RangeResponse) => r.kvs.forEach(strip);
  const stripPut = (r: PutResponse) => strip(r.prevKv);
  const stripDelete = (r: DeleteRangeResponse) => r.prevKvs.forEach(strip);
  const stripTxn = (r: TxnResponse): void =>
    r.responses.forEach((o: ResponseOp) => {
      const x = o.response;
      if (x?.$case === "responseRange") stripRange(x.responseRange);
      else if (x?.$case === "responsePut") stripPut(x.responsePut);
      else if (x?.$case === "responseDeleteRange") stripDelete(x.responseDeleteRange);
      else if (x?.$case === "responseTxn") stripTxn(x.responseTxn);
    });
  const stripWatch = (r: WatchResponse) =>
    r.events.forEach((e) => {
      strip(e.kv);
      strip(e.prevKv);
    });
  const inside = (k: Uint8Array) => k.length >= prefix.length && prefix.every((b, i) => k[i] === b);
  // A lease's keys may lie in other namespaces too: those are left out, as clientv3 does.
  const stripTimeToLive = (r: LeaseTimeToLiveResponse) => {
    r.keys = r.keys.filter(inside).map((k) => k.subarray(prefix.length));
  };

  // Requests in, responses out, per method; methods without keys pass through.
  const rewrites: Record<string, [(request: never) => unknown, (response: never) => void]> = {
    "/etcdserverpb.KV/Range": [range, stripRange],
    "/etcdserverpb.KV/RangeStream": [range, (r: RangeStreamResponse) => r.rangeResponse && stripRange(r.rangeResponse)],
    "/etcdserverpb.KV/Put": [put, stripPut],
    "/etcdserverpb.KV/DeleteRange": [del, stripDelete],
    "/etcdserverpb.KV/Txn": [txn, stripTxn],
    "/etcdserverpb.Watch/Watch": [watch, stripWatch],
    "/etcdserverpb.Lease/LeaseTimeToLive": [(r: unknown) => r, stripTimeToLive],
  };

  return async function* namespace(call, options) {
    const rewrite = rewrites[call.method.path];
    if (!rewrite) return yield* call.next(call.request, options);
    const [toServer, fromServer] = rewrite as [(request: unknown) => unknown, (response: unknown) => void];
    const request = call.requestStream
      ? (async function* () {
          for await (const r of call.request as AsyncIterable<unknown>) yield toServer(r);
        })()
      : toServer(call.request);
    if (!call.responseStream) {
      const response = yield* call.next(request as never, options);
      fromServer(response);
      return response;
    }
    for await (const response of call.next(request as never, options) as AsyncIterable<unknown>) {
      fromServer(response);
      yield response as never;
    }
  } as ClientMiddleware;
}
