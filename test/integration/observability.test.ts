import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { openTelemetryClientMiddleware } from "nice-grpc-opentelemetry";
import { prometheusClientMiddleware, registry } from "nice-grpc-prometheus";
import { describe, expect, it } from "vitest";
import { Client, ErrEmptyKey } from "../../src/index.js";
import { uniquePrefix, useCluster } from "../helpers.js";

const etcd = useCluster();

// Metrics and tracing are nice-grpc's own middleware packages, passed in by the user: the SDK
// itself depends on neither.
describe("observability middleware", () => {
  it("counts calls and their status codes with nice-grpc-prometheus", async () => {
    await using client = new Client({ endpoints: etcd.cluster.endpoints, middleware: { outer: [prometheusClientMiddleware()] } });
    await client.kv.put(`${uniquePrefix()}k`, "v");
    await expect(client.kv.put("", "v")).rejects.toBeInstanceOf(ErrEmptyKey);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/grpc_client_handled_total\{[^}]*grpc_method="Put"[^}]*grpc_code="OK"[^}]*\} 1/);
    expect(metrics).toMatch(/grpc_client_handled_total\{[^}]*grpc_method="Put"[^}]*grpc_code="INVALID_ARGUMENT"[^}]*\} 1/);
  });

  it("traces each call as a span with nice-grpc-opentelemetry", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    try {
      await using client = new Client({ endpoints: etcd.cluster.endpoints, middleware: { outer: [openTelemetryClientMiddleware()] } });
      await client.kv.get(`${uniquePrefix()}k`);
      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.name)).toContain("etcdserverpb.KV/Range");
    } finally {
      trace.disable();
      await provider.shutdown();
    }
  });
});
