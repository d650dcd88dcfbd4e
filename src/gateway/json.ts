import { ClientError, Status } from "nice-grpc-common";
import type { MessageCodec } from "../service-client.js";

/**
 * A request as etcd's gateway reads it: ts-proto's JSON mapping, which is protobuf's (int64 as
 * strings, bytes as base64, enums by name, lowerCamel names that etcd accepts like its own).
 */
export function requestJson(codec: MessageCodec, request: unknown): string {
  return JSON.stringify(codec.toJSON(codec.fromPartial(request as never) as never));
}

/** A response from the gateway's JSON. */
export function responseFromJson(codec: MessageCodec, json: unknown): unknown {
  return codec.fromJSON(json);
}

/** An error object of the gateway: {code, message} (etcd 3.5+) or {grpc_code, message} (3.4). */
interface GatewayError {
  code?: number;
  grpc_code?: number;
  message?: string;
  error?: string;
}

/** gRPC statuses for HTTP statuses, when the body is not the gateway's JSON (a proxy, an old server). */
function statusOfHttp(status: number): Status {
  if (status === 404 || status === 405 || status === 501) return Status.UNIMPLEMENTED;
  if (status === 401) return Status.UNAUTHENTICATED;
  if (status === 403) return Status.PERMISSION_DENIED;
  if (status === 408 || status === 504) return Status.DEADLINE_EXCEEDED;
  if (status === 413) return Status.RESOURCE_EXHAUSTED;
  if (status === 429 || status === 502 || status === 503) return Status.UNAVAILABLE;
  if (status >= 400 && status < 500) return Status.INVALID_ARGUMENT;
  return Status.INTERNAL;
}

function errorFromJson(path: string, error: GatewayError): ClientError {
  const code = error.code ?? error.grpc_code ?? Status.UNKNOWN;
  return new ClientError(path, code, error.message ?? error.error ?? "");
}

/** The ClientError for a response the gateway did not answer with 200, as gRPC would report it. */
export function httpError(path: string, status: number, body: string): ClientError {
  try {
    const parsed = JSON.parse(body) as GatewayError;
    if (typeof parsed === "object" && parsed !== null && (parsed.code !== undefined || parsed.grpc_code !== undefined)) return errorFromJson(path, parsed);
  } catch {
    // not the gateway's JSON: fall back on the HTTP status
  }
  return new ClientError(path, statusOfHttp(status), `HTTP ${status}: ${body.trim().slice(0, 200)}`);
}

/**
 * The messages of a streamed response: one JSON object per line, {"result": message} or
 * {"error": status}, which ends the stream as the gRPC status would.
 */
export async function* streamedResults(body: ReadableStream<Uint8Array>, path: string): AsyncGenerator<unknown, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffered += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== "") yield parseStreamed(line, path);
      }
      if (done) break;
    }
    if (buffered.trim() !== "") yield parseStreamed(buffered, path);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function parseStreamed(line: string, path: string): unknown {
  let parsed: { result?: unknown; error?: GatewayError };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new ClientError(path, Status.INTERNAL, `the gateway sent a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (parsed.error) throw errorFromJson(path, parsed.error);
  return parsed.result ?? {};
}
