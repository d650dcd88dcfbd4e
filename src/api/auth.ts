import { Permission_Type } from "../../gen/authpb/auth.js";
import type { AuthDefinition, ResponseHeader as ResponseHeaderPb } from "../../gen/etcdserverpb/rpc.js";
import { type Bytes, describe, utf8 } from "../core/bytes.js";
import { InvalidArgumentError } from "../core/errors.js";
import { type CallOptions, callOptions, type KeySelection, ResponseHeader, selectKeys } from "./kv.js";
import type { ServiceClient } from "../pipeline/call-pipeline.js";

/** What a permission allows on its keys. */
export type PermissionType = "read" | "write" | "readwrite";

/** One key permission of a role, as {@link Auth.roleGet} gives it. */
export interface Permission {
  /** What it allows. */
  type: PermissionType;
  /** The key, or the start of the range, as bytes. */
  key: Uint8Array;
  /** Empty for a single key; "\0" for every key from `key` on. */
  rangeEnd: Uint8Array;
  /** The key as text. */
  keyString: string;
}

/** Options of {@link Auth.userAdd}. */
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

/** What an auth call resolves to: the answering member's header, and the call's own fields. */
export type AuthResponse = {
  /** Which member answered, at which revision. */
  header: ResponseHeader;
};

const header = (r: { header: ResponseHeaderPb | undefined }): AuthResponse => ({ header: new ResponseHeader(r.header) });

/** Auth administration: `client.auth`, as clientv3's Auth (users, roles, permissions, enabling). */
export class Auth {
  /** @internal */
  constructor(private readonly rpc: () => ServiceClient<typeof AuthDefinition>) {}

  /** Turns authentication on; a root user with the root role must exist. */
  async authEnable(options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().authEnable({}, callOptions(options)));
  }

  /** Turns authentication off; needs the root role while it is on. */
  async authDisable(options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().authDisable({}, callOptions(options)));
  }

  /** Whether auth is on, and the auth store's revision (etcd 3.5+). */
  async authStatus(options: CallOptions = {}): Promise<AuthResponse & {
    /** Whether auth is on. */
    enabled: boolean;
    /** The auth store's revision, which every change of users, roles or permissions raises. */
    authRevision: bigint;
  }> {
    const r = await this.rpc().authStatus({}, callOptions(options));
    return { ...header(r), enabled: r.enabled, authRevision: r.authRevision };
  }

  /** Adds a user; etcd stores a hash of `password`. */
  async userAdd(name: string, password: string, options: UserAddOptions & CallOptions = {}): Promise<AuthResponse> {
    // No hashedPassword: etcd's API hashes `password` itself and overwrites any hash it is sent.
    const request = { name, password, options: { noPassword: options.noPassword ?? false } };
    return header(await this.rpc().userAdd(request, callOptions(options)));
  }

  /** The roles granted to a user. */
  async userGet(name: string, options: CallOptions = {}): Promise<AuthResponse & {
    /** The names of the user's roles. */
    roles: string[];
  }> {
    const r = await this.rpc().userGet({ name }, callOptions(options));
    return { ...header(r), roles: r.roles };
  }

  /** The names of every user. */
  async userList(options: CallOptions = {}): Promise<AuthResponse & {
    /** The user names. */
    users: string[];
  }> {
    const r = await this.rpc().userList({}, callOptions(options));
    return { ...header(r), users: r.users };
  }

  /** Deletes a user. */
  async userDelete(name: string, options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().userDelete({ name }, callOptions(options)));
  }

  /** Sets a user's password; etcd stores a hash of it. */
  async userChangePassword(name: string, password: string, options: CallOptions = {}): Promise<AuthResponse> {
    const request = { name, password };
    return header(await this.rpc().userChangePassword(request, callOptions(options)));
  }

  /** Grants a role to a user. */
  async userGrantRole(user: string, role: string, options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().userGrantRole({ user, role }, callOptions(options)));
  }

  /** Takes a role away from a user. */
  async userRevokeRole(user: string, role: string, options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().userRevokeRole({ name: user, role }, callOptions(options)));
  }

  /** Adds a role, without permissions. */
  async roleAdd(name: string, options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().roleAdd({ name }, callOptions(options)));
  }

  /** The key permissions of a role. */
  async roleGet(role: string, options: CallOptions = {}): Promise<AuthResponse & {
    /** The role's key permissions. */
    permissions: Permission[];
  }> {
    const r = await this.rpc().roleGet({ role }, callOptions(options));
    return {
      ...header(r),
      permissions: r.perm.map((p) => ({ type: PERMISSION_NAMES[p.permType] ?? "read", key: p.key, rangeEnd: p.rangeEnd, keyString: utf8(p.key) })),
    };
  }

  /** The names of every role. */
  async roleList(options: CallOptions = {}): Promise<AuthResponse & {
    /** The role names. */
    roles: string[];
  }> {
    const r = await this.rpc().roleList({}, callOptions(options));
    return { ...header(r), roles: r.roles };
  }

  /** Deletes a role, taking it away from every user that has it. */
  async roleDelete(role: string, options: CallOptions = {}): Promise<AuthResponse> {
    return header(await this.rpc().roleDelete({ role }, callOptions(options)));
  }

  /** Grants a role access of `type` to a key, or a range, prefix or from-key selection. */
  async roleGrantPermission(role: string, key: Bytes, type: PermissionType, options: KeySelection & CallOptions = {}): Promise<AuthResponse> {
    if (!Object.hasOwn(PERMISSIONS, type)) throw new InvalidArgumentError("permission type", `must be read, write or readwrite, got ${describe(type)}`);
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "roleGrantPermission");
    const perm = { permType: PERMISSIONS[type], key: wireKey, rangeEnd };
    return header(await this.rpc().roleGrantPermission({ name: role, perm }, callOptions(options)));
  }

  /** Takes a key or range permission away from a role (the same key and selection as granted). */
  async roleRevokePermission(role: string, key: Bytes, options: KeySelection & CallOptions = {}): Promise<AuthResponse> {
    const { key: wireKey, rangeEnd } = selectKeys(key, options, "roleRevokePermission");
    return header(await this.rpc().roleRevokePermission({ role, key: wireKey, rangeEnd }, callOptions(options)));
  }
}
