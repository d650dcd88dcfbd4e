/**
 * One (client, scenario) run in a process of its own, so that the CPU and memory it reports are
 * that client's alone. Started by the orchestrator (run.ts) with the job as its only argument;
 * reports over the IPC channel and exits.
 */
import { connectClient } from "./clients/index.js";
import type { FromWorker, Job, ToWorker } from "./protocol.js";
import { type Outcome, runScenario, settledRssMb, writeWatchedKeys } from "./workloads.js";

const send = (message: FromWorker): Promise<void> => new Promise((resolve) => process.send!(message, () => resolve()));

// Without the orchestrator nobody reads the result: do not linger (Ctrl-C, or the orchestrator killed).
process.on("disconnect", () => process.exit(1));

/** Resolves when the orchestrator sends a message of this type. */
function whenTold(type: ToWorker["type"]): Promise<void> {
  return new Promise((resolve) => {
    const listener = (message: ToWorker) => {
      if (message.type !== type) return;
      process.off("message", listener);
      resolve();
    };
    process.on("message", listener);
  });
}

async function run(job: Job): Promise<Outcome> {
  if (job.role === "idle") return { metrics: { rssMb: settledRssMb() }, window: [0, 0] };
  if (job.role === "writer") {
    const client = await connectClient("grpc-js", job.endpoints);
    const outcome = await writeWatchedKeys(client, job.keys, job.concurrency, job.timing, () => void send({ type: "measuring" }));
    await client.close();
    return outcome;
  }
  const client = await connectClient(job.client, job.endpoints);
  const control = { ready: () => void send({ type: "ready" }), measure: whenTold("measure"), stop: whenTold("stop") };
  const outcome = await runScenario(client, job.scenario, job.timing, control);
  await client.close();
  return outcome;
}

const job = JSON.parse(process.argv[2] ?? "null") as Job;
try {
  const { metrics, window } = await run(job);
  await send({ type: "result", metrics, window });
  // exit() rather than waiting for open handles to drain: a client may keep timers or sockets a while.
  process.exit(0);
} catch (err) {
  await send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
}
