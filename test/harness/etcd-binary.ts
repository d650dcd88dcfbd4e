import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The etcd release the harness builds when nothing else is given; the wire contract's version. */
export const PINNED_ETCD_VERSION = "v3.7.1";

export class EtcdUnavailableError extends Error {
  override name = "EtcdUnavailableError";
}

function cacheRoot(): string {
  return process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && (await isExecutable(join(dir, name)))) return join(dir, name);
  }
  return undefined;
}

/** A Go program could not be built: no Go toolchain, or the build failed. */
export class GoBuildError extends Error {
  override name = "GoBuildError";
}

/**
 * Builds a Go program once and caches it as ~/.cache/etcd-sdk/<cacheDir>/<name>, so a fresh
 * machine needs only Go and the module proxy. `build` writes the binary to the path it is given,
 * with `go` and an environment that keeps to the local toolchain; that path is renamed into place
 * afterwards, so a concurrent or interrupted build never leaves a half-written binary.
 * `what` names the program in errors ("etcd v3.7.1").
 */
export async function buildGoProgram(
  cacheDir: string,
  name: string,
  what: string,
  build: (go: string, output: string, env: NodeJS.ProcessEnv) => Promise<void>,
): Promise<string> {
  const dir = join(cacheRoot(), "etcd-sdk", cacheDir);
  const binary = join(dir, name);
  if (await isExecutable(binary)) return binary;
  const go = await onPath("go");
  if (!go) throw new GoBuildError(`no Go toolchain on PATH to build ${name} with`);
  await mkdir(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  try {
    await build(go, partial, { ...process.env, GOTOOLCHAIN: "local", GO111MODULE: "on" });
    await rename(partial, binary);
    return binary;
  } catch (err) {
    await rm(partial, { force: true });
    const detail = err instanceof Error ? err.message : String(err);
    throw new GoBuildError(`building ${what} with Go failed: ${detail}`);
  }
}

/**
 * Builds etcd `version` (or another command of its modules: etcdutl, the bench's tools/benchmark)
 * from its Go package inside a throwaway module and caches the binary as
 * ~/.cache/etcd-sdk/etcd-<version>/<name> (see buildGoProgram). Throws EtcdUnavailableError when
 * Go is missing or the build fails.
 */
export async function buildFromGoModule(version: string, module = "go.etcd.io/etcd/server/v3", name = "etcd"): Promise<string> {
  try {
    return await buildGoProgram(`etcd-${version}`, name, `${name} ${version}`, async (go, output, env) => {
      const work = await mkdtemp(join(tmpdir(), "etcd-build-"));
      try {
        await writeFile(join(work, "go.mod"), "module etcdbuild\n\ngo 1.24\n");
        const opts = { cwd: work, env: { ...env, GOFLAGS: "-mod=mod" }, maxBuffer: 64 * 1024 * 1024 };
        await run(go, ["get", `${module}@${version}`], opts);
        await run(go, ["build", "-trimpath", "-o", output, module], opts);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });
  } catch (err) {
    if (err instanceof GoBuildError) throw new EtcdUnavailableError(err.message);
    throw err;
  }
}

/**
 * Finds the etcd server to test against: ETCD_BIN if set, else the pinned release built with Go
 * (cached under the user's cache dir), else an `etcd` on PATH.
 */
export async function resolveEtcdBinary(version = PINNED_ETCD_VERSION): Promise<string> {
  const fromEnv = process.env.ETCD_BIN;
  if (fromEnv) {
    if (await isExecutable(fromEnv)) return fromEnv;
    throw new EtcdUnavailableError(`ETCD_BIN=${fromEnv} is not an executable file`);
  }
  let buildError: EtcdUnavailableError | undefined;
  try {
    return await buildFromGoModule(version);
  } catch (err) {
    if (!(err instanceof EtcdUnavailableError)) throw err;
    buildError = err;
  }
  const fromPath = await onPath("etcd");
  if (fromPath) return fromPath;
  throw new EtcdUnavailableError(
    `no etcd server available: set ETCD_BIN, install Go so the harness can build etcd ${version}, ` +
      `or put etcd on PATH (${buildError.message})`,
  );
}

/** The version line etcd prints, e.g. "3.7.1". */
export async function etcdVersion(binary: string): Promise<string> {
  const { stdout } = await run(binary, ["--version"]);
  const match = /etcd Version: (\S+)/.exec(stdout);
  if (!match?.[1]) throw new EtcdUnavailableError(`${binary} --version printed no version`);
  return match[1];
}

/**
 * etcdutl (snapshot restore and other offline tools): ETCDUTL_BIN if set, else built from its Go
 * module at the pinned version, else from PATH.
 */
export async function resolveEtcdutl(version = PINNED_ETCD_VERSION): Promise<string> {
  if (process.env.ETCDUTL_BIN) return process.env.ETCDUTL_BIN;
  try {
    return await buildFromGoModule(version, "go.etcd.io/etcd/etcdutl/v3", "etcdutl");
  } catch (err) {
    const fromPath = await onPath("etcdutl");
    if (fromPath) return fromPath;
    throw err;
  }
}
