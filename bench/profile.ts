/**
 * Where a worker's CPU went: self time by function and by package from a V8 .cpuprofile, over the
 * measured window only (start-up, TypeScript compilation and warm-up left out), plus inclusive
 * time of the SDK's own functions. Usable alone:
 *   node_modules/.bin/tsx bench/profile.ts <file.cpuprofile> [fromUs toUs]
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  /** µs on the monotonic clock process.hrtime uses. */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The package (or part of this repository) a frame's code belongs to. */
function category(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return functionName.startsWith("(") ? functionName : "V8/native builtins";
  if (url.startsWith("node:")) return "node internals";
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inModules) return inModules[1]!;
  const local = url.replace(/^file:\/\//, "").replace(ROOT, "").replace(/^bench\/\.build\//, "");
  const top = local.split("/")[0]!;
  return { src: "SDK src/", middleware: "SDK middleware/", gen: "generated codecs gen/", bench: "bench harness" }[top] ?? local;
}

function label(frame: CallFrame): string {
  // Workers run the SDK compiled into bench/.build: lines are those of the compiled JavaScript.
  const where = frame.url.replace(/^file:\/\//, "").replace(ROOT, "").replace(/^bench\/\.build\//, "").replace(/^.*node_modules\//, "");
  const line = where && frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : "";
  return `${frame.functionName || "(anonymous)"} ${where}${line}`;
}

/** Time in Node's own code or V8 builtins is charged to whichever library called into it. */
const RUNTIME = new Set(["node internals", "V8/native builtins"]);

function table(title: string, entries: Map<string, number>, total: number, top: number): string {
  const rows = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [title, ...rows.map(([name, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`)].join("\n");
}

export function summariseProfile(profile: CpuProfile, window?: [number, number], top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const self = new Map<string, number>();
  const packages = new Map<string, number>();
  const charged = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (window && (t < window[0] || t > window[1])) continue;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === "(idle)") {
      idle += weight;
      continue;
    }
    busy += weight;
    const leaf = label(node.callFrame);
    self.set(leaf, (self.get(leaf) ?? 0) + weight);
    packages.set(category(node.callFrame), (packages.get(category(node.callFrame)) ?? 0) + weight);
    let owner = node;
    while (RUNTIME.has(category(owner.callFrame)) && parent.has(owner.id)) owner = byId.get(parent.get(owner.id)!)!;
    // Climbing to the root means no library frame is on the stack: the event loop or microtask queue ran it.
    const ownerCategory = RUNTIME.has(category(owner.callFrame))
      ? category(node.callFrame)
      : owner.callFrame.functionName === "(root)"
        ? "event loop, no library frame"
        : category(owner.callFrame);
    charged.set(ownerCategory, (charged.get(ownerCategory) ?? 0) + weight);
    if (owner !== node) {
      const byCaller = callers.get(leaf) ?? new Map<string, number>();
      byCaller.set(label(owner.callFrame), (byCaller.get(label(owner.callFrame)) ?? 0) + weight);
      callers.set(leaf, byCaller);
    }
    // Inclusive time of the SDK's own frames, each counted once per sample even when recursive.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const cat = category(frame);
      if (cat !== "SDK src/" && cat !== "SDK middleware/") continue;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + weight);
    }
  }
  // Name the library frame that called into Node or V8 for the runtime functions among the top ones.
  const topSelf = new Map(
    [...self].map(([name, us]) => {
      const caller = [...(callers.get(name) ?? [])].sort((a, b) => b[1] - a[1])[0]?.[0];
      return [caller ? `${name}  ← ${caller}` : name, us];
    }),
  );
  const span = window ? `window of ${((window[1] - window[0]) / 1e6).toFixed(1)} s` : "whole profile";
  return [
    `${span}: ${(busy / 1000).toFixed(0)} ms on CPU in the main thread, ${(idle / 1000).toFixed(0)} ms idle`,
    table("\nself time by package", packages, busy, 15),
    table("\nself time by package, Node and V8 builtins charged to the library that called them", charged, busy, 15),
    table(`\ntop ${top} functions by self time (← the library frame that called into Node/V8)`, topSelf, busy, top),
    table("\nSDK functions by inclusive time", inclusive, busy, 15),
  ].join("\n");
}

export async function summariseProfileFile(path: string, window?: [number, number], top?: number): Promise<string> {
  return summariseProfile(JSON.parse(await readFile(path, "utf8")) as CpuProfile, window, top);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [path, from, to] = process.argv.slice(2);
  if (!path) {
    console.error("usage: tsx bench/profile.ts <file.cpuprofile> [fromUs toUs]");
    process.exit(2);
  }
  console.log(await summariseProfileFile(path, from && to ? [Number(from), Number(to)] : undefined));
}
