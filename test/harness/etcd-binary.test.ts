import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EtcdUnavailableError, resolveEtcdBinary } from "./etcd-binary.js";

describe("resolveEtcdBinary", () => {
  const saved = { ...process.env };
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-binary-test-"));
    // An empty cache, so nothing built earlier is found.
    process.env.XDG_CACHE_HOME = join(dir, "cache");
  });
  afterEach(async () => {
    process.env = { ...saved };
    await rm(dir, { recursive: true, force: true });
  });

  it("uses ETCD_BIN when it is executable and says so when it is not", async () => {
    const fake = join(dir, "my-etcd");
    await writeFile(fake, "#!/bin/sh\n");
    await chmod(fake, 0o755);
    process.env.ETCD_BIN = fake;
    await expect(resolveEtcdBinary()).resolves.toBe(fake);
    process.env.ETCD_BIN = join(dir, "missing");
    await expect(resolveEtcdBinary()).rejects.toThrow(/ETCD_BIN=.*missing is not an executable file/);
  });

  it("falls back to etcd on PATH when Go is absent, and explains every option when neither is there", async () => {
    delete process.env.ETCD_BIN;
    process.env.PATH = dir;
    const err = await resolveEtcdBinary().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdUnavailableError);
    expect((err as Error).message).toMatch(/set ETCD_BIN, install Go .* or put etcd on PATH \(no Go toolchain on PATH/);

    const onPath = join(dir, "etcd");
    await writeFile(onPath, "#!/bin/sh\n");
    await chmod(onPath, 0o755);
    await expect(resolveEtcdBinary()).resolves.toBe(onPath);
  });
});
