import { Permission_Type } from "../../gen/authpb/auth.js";
import type { AuthDefinition, ResponseHeader as ResponseHeaderPb } from "../../gen/etcdserverpb/rpc.js";
import { type Bytes, describe, utf8 } from "../core/bytes.js";
import { InvalidArgumentError } from "../core/errors.js";
import { type CallOptions, callOptions, type KeySelection, ResponseHeader, selectKeys } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

export type PermissionType = "read" | "write" | "readwrite";

export interface Permission {
  type: PermissionType;
  key: Uint8Array;
  /** Empty for a single key; "\0" for every key from `key` on. */
  rangeEnd: Uint8Array;
  /** The key as text. */
  keyString: string;
}

export interface UserAddOptions {
  /** A user that cannot authenticate with a password (e.g. only with a TLS client certificate). */
  noPassword?: boolean;
}

const PERMISSIONS: Record<PermissionType, Permission_Type> = {
  read: Permission_Type.READ,
  write: Permission_Type.WRITE,
  readwrite: Permission_Type.READWRITE,
};
const PERMISSION_NAMES = ["read", "write", "readwrite"] as const;

type Header = { header: ResponseHeader };

const header = (r: { header: ResponseHeaderPb | undefined }): Header => ({ header: new ResponseHeader(r.header) });

/** Auth administration: `client.auth`, as clientv3's Auth (users, roles, permissions, enabling). */
export class Auth {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof AuthDefinition>) {}

  /** Turns authentication on; a root user with the root role must exist. */
  async authEnable(options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().authEnable({}, callOptions(options)));
  }

  async authDisable(options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().authDisable({}, callOptions(options)));
  }

  /** Whether auth is on, and the auth store's revision (etcd 3.5+). */
  async authStatus(options: CallOptions = {}): Promise<Header & { enabled: boolean; authRevision: bigint }> {
    const r = await this.rpc().authStatus({}, callOptions(options));
    return { ...header(r), enabled: r.enabled, authRevision: r.authRevision };
  }

  async userAdd(name: string, password: string, options: UserAddOptions & CallOptions = {}): Promise<Header> {
    // No hashedPassword: etcd's API hashes `password` itself and overwrites any hash it is sent.
    const request = { name, password, options: { noPassword: options.noPassword ?? false } };
    return header(await this.rpc().userAdd(request, callOptions(options)));
  }

  /** The roles granted to a user. */
  async userGet(name: string, options: CallOptions = {}): Promise<Header & { roles: string[] }> {
    const r = await this.rpc().userGet({ name }, callOptions(options));
    return { ...header(r), roles: r.roles };
  }

  async userList(options: CallOptions = {}): Promise<Header & { users: string[] }> {
    const r = await this.rpc().userList({}, callOptions(options));
    return { ...header(r), users: r.users };
  }

  async userDelete(name: string, options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().userDelete({ name }, callOptions(options)));
  }

  async userChangePassword(name: string, password: string, options: CallOptions = {}): Promise<Header> {
    const request = { name, password };
    return header(await this.rpc().userChangePassword(request, callOptions(options)));
  }

  async userGrantRole(user: string, role: string, options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().userGrantRole({ user, role }, callOptions(options)));
  }

  async userRevokeRole(user: string, role: string, options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().userRevokeRole({ name: user, role }, callOptions(options)));
  }

  async roleAdd(name: string, options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().roleAdd({ name }, callOptions(options)));
  }

  /** The key permissions of a role. */
  async roleGet(role: string, options: CallOptions = {}): Promise<Header & { permissions: Permission[] }> {
    const r = await this.rpc().roleGet({ role }, callOptions(options));
    return {
      ...header(r),
      permissions: r.perm.map((p) => ({ type: PERMISSION_NAMES[p.permType] ?? "read", key: p.key, rangeEnd: p.rangeEnd, keyString: utf8(p.key) })),
    };
  }

  async roleList(options: CallOptions = {}): Promise<Header & { roles: string[] }> {
    const r = await this.rpc().roleList({}, callOptions(options));
    return { ...header(r), roles: r.roles };
  }

  async roleDelete(role: string, options: CallOptions = {}): Promise<Header> {
    return header(await this.rpc().roleDelete({ role }, callOptions(options)));
  }

  /** Grants a role access of `type` to a key, or a range, prefix or from-key selection. */
  async roleGrantPermission(role: string, key: Bytes, type: PermissionType, options: KeySelection & CallOptions = {}): Promise<Header> {
    if (!Object.hasOwn(PERMISSIONS, type)) throw new InvalidArgumentError("permission type", `must be read, write or readwrite, got ${describe(type)}`);
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "roleGrantPermission");
    const perm = { permType: PERMISSIONS[type], key: wireKey, rangeEnd };
    return header(await this.rpc().roleGrantPermission({ name: role, perm }, callOptions(options)));
  }

  /** Takes a key or range permission away from a role (the same key and selection as granted). */
  async roleRevokePermission(role: string, key: Bytes, options: KeySelection & CallOptions = {}): Promise<Header> {
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "roleRevokePermission");
    return header(await this.rpc().roleRevokePermission({ role, key: wireKey, rangeEnd }, callOptions(options)));
  }
}
