export { Session, type SessionOptions } from "./session.js";
export { LockedError, Mutex, NotLockedError } from "./mutex.js";
export { Election } from "./election.js";
export { type Isolation, runStm, type Stm, StmConflictError, type StmOptions } from "./stm.js";
