/**
 * Lets a timer run without keeping Node's process alive (a background renewal, a backoff). A
 * browser's timer ids are numbers, which have nothing to unref.
 */
export function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
