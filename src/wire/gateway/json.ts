import { Status } from "nice-grpc-common";
import { WireFailure } from "../../core/wire-failure.js";
import { gatewayStatusOfHttp } from "../http-status.js";
import type { MessageCodec } from "../wire.js";

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

function errorFromJson(path: string, error: GatewayError): WireFailure {
  const code = error.code ?? error.grpc_code ?? Status.UNKNOWN;
  return new WireFailure(path, code, error.message ?? error.error ?? "", "answered");
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
    throw new WireFailure(path, Status.INTERNAL, `the gateway sent a line that is not JSON: ${line.slice(0, 200)}`, "answered");
  }
  if (parsed.error) throw errorFromJson(path, parsed.error);
  return parsed.result ?? {};
}
