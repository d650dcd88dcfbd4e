/** Child processes for the tests that build, install and run the package the way its users do. */
import { execFile } from "node:child_process";

/** How a child process ended, with its output for failure messages. */
export interface RunResult {
  /** The exit code; null when a signal ended the process or it never started. */
  code: number | null;
  /** The signal that ended the process (SIGTERM after `timeoutMs`), if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What a child process gets besides its command line. */
export interface RunOptions {
  /** Variables added to (or replacing) this process's environment. */
  env?: Record<string, string>;
  /** Ends the process with SIGTERM after this long; no limit by default. */
  timeoutMs?: number;
}

/** Runs a command to completion without throwing; the result carries the output for messages. */
export function run(command: string, args: string[], cwd: string, options: RunOptions = {}): Promise<RunResult> {
  return new Promise((done) => {
    // NODE_OPTIONS is the test runner's business, not the child's.
    const { NODE_OPTIONS: _ignored, ...inherited } = process.env;
    const env = { ...inherited, ...options.env };
    execFile(command, args, { cwd, env, timeout: options.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
      done({ code, signal: error?.signal ?? null, stdout, stderr });
    });
  });
}

/** A run's outcome and output, for an assertion's message. */
export function describeRun(what: string, r: RunResult): string {
  const ended = r.signal === null ? `exited with ${r.code}` : `was ended by ${r.signal}`;
  return `${what} ${ended}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Runs a command to completion; rejects, with its output, unless it exits with 0. */
export async function mustRun(what: string, command: string, args: string[], cwd: string, options: RunOptions = {}): Promise<RunResult> {
  const r = await run(command, args, cwd, options);
  if (r.code !== 0) throw new Error(describeRun(what, r));
  return r;
}
