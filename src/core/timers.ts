/**
 * Lets a timer run without keeping Node's process alive (a background renewal, a backoff). A
 * browser's timer ids are numbers, which have nothing to unref.
 */
export function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/**
 * Starts a timer over for its own delay and callback: with Node's `refresh()`, which reuses the
 * timer (thousands of leases renewed every few seconds would otherwise leave a dead timer each
 * time for the garbage collector); elsewhere, or with no timer yet, with a new one from `start`.
 */
export function restart<T>(timer: T | undefined, start: () => T): T {
  if (timer === undefined) return start();
  const refreshable = timer as { refresh?: () => unknown };
  if (typeof refreshable.refresh === "function") {
    refreshable.refresh();
    return timer;
  }
  clearTimeout(timer as Parameters<typeof clearTimeout>[0]);
  return start();
}
