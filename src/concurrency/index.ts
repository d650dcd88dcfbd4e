export { Session, type SessionOptions } from "./session.js";
export { LockedError, Mutex, NotLockedError } from "./mutex.js";
export { Election } from "./election.js";
export { type Isolation, runStm, type Stm, StmConflictError, type StmOptions } from "./stm.js";
export { RWMutex } from "./rwmutex.js";
export { Barrier } from "./barrier.js";
export { BarrierFullError, DoubleBarrier } from "./double-barrier.js";
export { Queue } from "./queue.js";
export { PriorityQueue } from "./priority-queue.js";
