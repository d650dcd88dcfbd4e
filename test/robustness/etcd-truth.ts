import type { RecordedEvent } from "./watch-checks.js";

/**
 * What etcd itself holds, read over its JSON gateway with plain fetch rather than through the
 * SDK under test, so that the checks compare the SDK with an account that owes it nothing.
 */

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined) => Buffer.from(s ?? "", "base64").toString();

/** The end of the range of keys that start with `prefix`. */
function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix);
  bytes[bytes.length - 1]!++;
  return bytes.toString("base64");
}

interface GatewayKv {
  key: string;
  value?: string;
  mod_revision?: string;
}

/** The keys under `prefix` (without it) with their values and mod revisions, and the store's revision, read linearizably. */
export async function readStore(clientUrl: string, prefix: string): Promise<{ revision: bigint; store: Map<string, { value: string; modRevision: bigint }> }> {
  const res = await fetch(`${clientUrl}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(prefix), range_end: prefixEnd(prefix) }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { header: { revision: string }; kvs?: GatewayKv[] };
  if (!res.ok) throw new Error(`range over the gateway failed: ${JSON.stringify(body)}`);
  const store = new Map<string, { value: string; modRevision: bigint }>();
  for (const kv of body.kvs ?? []) store.set(unb64(kv.key).slice(prefix.length), { value: unb64(kv.value), modRevision: BigInt(kv.mod_revision ?? "0") });
  return { revision: BigInt(body.header.revision), store };
}

/**
 * Every change under `prefix` from revision `from` through `until`, from a watch that replays
 * etcd's history. Fails if they do not all arrive within `timeoutMs`.
 */
export async function readHistory(clientUrl: string, prefix: string, from: bigint, until: bigint, timeoutMs = 15_000): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  if (until < from) return events;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(`${clientUrl}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(from) } }),
      signal: abort.signal,
    });
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        const message = JSON.parse(line) as { result?: { events?: { type?: string; kv: GatewayKv }[] }; error?: unknown };
        if (message.error) throw new Error(`watch over the gateway failed: ${JSON.stringify(message.error)}`);
        for (const e of message.result?.events ?? []) {
          const modRevision = BigInt(e.kv.mod_revision ?? "0");
          if (modRevision > until) return events;
          events.push({ type: e.type === "DELETE" ? "delete" : "put", key: unb64(e.kv.key).slice(prefix.length), value: unb64(e.kv.value), modRevision });
        }
        // A response holds whole revisions: once it reaches `until`, nothing of it is left.
        if (events.at(-1)?.modRevision === until) return events;
      }
    }
    throw new Error("the gateway's watch ended early");
  } catch (err) {
    if (abort.signal.aborted) throw new Error(`etcd's history up to revision ${until} did not arrive within ${timeoutMs} ms (got ${events.length} events, to revision ${events.at(-1)?.modRevision ?? "none"})`);
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
