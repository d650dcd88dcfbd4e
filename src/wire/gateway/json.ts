import { Status } from "nice-grpc-common";
import { WireFailure } from "../../core/wire-failure.js";
import { gatewayStatusOfHttp, grpcCodeOf } from "../http-status.js";
import type { MessageCodec } from "../wire.js";

/**
 * A request as etcd's gateway reads it: ts-proto's JSON mapping, which is protobuf's (int64 as
 * strings, bytes as base64, enums by name, lowerCamel names that etcd accepts like its own).
 */
export function requestJson(codec: MessageCodec, request: unknown): string {
  return JSON.stringify(codec.toJSON(codec.fromPartial(request as never) as never));
}

/** A response from the gateway's JSON; JSON that is not the message fails the call, typed. */
export function responseFromJson(codec: MessageCodec, json: unknown, path: string): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new WireFailure(path, Status.INTERNAL, `the gateway answered ${JSON.stringify(json)?.slice(0, 60)}, not a JSON object`, "answered");
  }
  try {
    return codec.fromJSON(json);
  } catch (err) {
    throw new WireFailure(path, Status.INTERNAL, `could not decode the gateway's response: ${err instanceof Error ? err.message : String(err)}`, "answered");
  }
}

/** An error object of the gateway: {code, message} (etcd 3.5+) or {grpc_code, message} (3.4). */
interface GatewayError {
  code?: number;
  grpc_code?: number;
  message?: string;
  error?: string;
}

function errorFromJson(path: string, error: GatewayError): WireFailure {
  const text = error.message ?? error.error;
  const details = typeof text === "string" ? text : JSON.stringify(error).slice(0, 200);
  return new WireFailure(path, grpcCodeOf(error.code ?? error.grpc_code), details, "answered");
}

/** The failure of a call the gateway did not answer with 200, with the gRPC status it stands for. */
export function httpError(path: string, status: number, body: string): WireFailure {
  try {
    const parsed = JSON.parse(body) as GatewayError;
    if (typeof parsed === "object" && parsed !== null && (parsed.code !== undefined || parsed.grpc_code !== undefined)) return errorFromJson(path, parsed);
  } catch {
    // not the gateway's JSON: fall back on the HTTP status
  }
  return new WireFailure(path, gatewayStatusOfHttp(status), `HTTP ${status}: ${body.trim().slice(0, 200)}`, "answered");
}

const NEWLINE = 0x0a;

/** The text of `parts`, decoded once: a line's pieces are joined only when the line is whole. */
function decodeParts(parts: Uint8Array[], bytes: number, decoder: TextDecoder): string {
  if (parts.length === 1) return decoder.decode(parts[0]);
  const joined = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return decoder.decode(joined);
}

/**
 * What a server may send the client, counted in bytes as they arrive: nothing beyond `limit` (no
 * limit when negative) is ever buffered. A body or line past it fails the call with `tooLarge`.
 */
interface Bound {
  limit: number;
  tooLarge: (bytes: number) => Error;
}

/** No limit: for what the client itself asked to be long (a test's own stream). */
const UNBOUNDED: Bound = { limit: -1, tooLarge: () => new Error("no limit") };

/** A whole response body as text, read within `bound` (the reader is cancelled once it is over). */
export async function boundedText(body: ReadableStream<Uint8Array> | null, bound: Bound): Promise<string> {
  if (!body) return "";
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      if (bound.limit >= 0 && bytes > bound.limit) throw bound.tooLarge(bytes);
      parts.push(value);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return parts.length === 0 ? "" : decodeParts(parts, bytes, new TextDecoder());
}

/**
 * The messages of a streamed response: one JSON object per line, {"result": message} or
 * {"error": status}, which ends the stream as the gRPC status would. Lines are split on the bytes
 * as they arrive (a newline byte never occurs inside a UTF-8 sequence), so each byte is looked at
 * once however long a line is, and a line is held only up to `bound`.
 */
export async function* streamedResults(body: ReadableStream<Uint8Array>, path: string, bound: Bound = UNBOUNDED): AsyncGenerator<unknown, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let lineBytes = 0;
  const take = (piece: Uint8Array) => {
    lineBytes += piece.length;
    if (bound.limit >= 0 && lineBytes > bound.limit) throw bound.tooLarge(lineBytes);
    if (piece.length > 0) parts.push(piece);
  };
  const line = () => {
    const text = decodeParts(parts, lineBytes, decoder).trim();
    parts = [];
    lineBytes = 0;
    return text;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let start = 0;
      for (let newline = value.indexOf(NEWLINE); newline >= 0; newline = value.indexOf(NEWLINE, start)) {
        take(value.subarray(start, newline));
        start = newline + 1;
        const text = line();
        if (text !== "") yield parseStreamed(text, path);
      }
      take(value.subarray(start));
    }
    const rest = line();
    if (rest !== "") yield parseStreamed(rest, path);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function parseStreamed(line: string, path: string): unknown {
  let parsed: { result?: unknown; error?: GatewayError };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new WireFailure(path, Status.INTERNAL, `the gateway sent a line that is not JSON: ${line.slice(0, 200)}`, "answered");
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new WireFailure(path, Status.INTERNAL, `the gateway sent a line that is not a JSON object: ${line.slice(0, 200)}`, "answered");
  }
  if (parsed.error) throw errorFromJson(path, typeof parsed.error === "object" ? parsed.error : { message: String(parsed.error) });
  return parsed.result ?? {};
}
