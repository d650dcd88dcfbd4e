/**
 * Latency recording and summaries. The histogram has fixed log-scale buckets so that recording
 * allocates nothing: a closed loop at 256 workers records tens of thousands of samples a second,
 * and growing an array would show up in the very CPU and RSS figures being measured.
 */

/** Relative width of a bucket: values are kept to within about 0.4 %. */
const GROWTH = 1 + 1 / 128;
const INV_LOG_GROWTH = 1 / Math.log(GROWTH);
/** Enough buckets for an hour in microseconds. */
const BUCKETS = Math.ceil(Math.log(3.6e9) * INV_LOG_GROWTH) + 2;

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;

  /** Records one value in microseconds. */
  record(us: number): void {
    const index = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) * INV_LOG_GROWTH) + 1);
    this.counts[index]!++;
    this.total++;
  }

  get count(): number {
    return this.total;
  }

  /** The value at quantile q (0..1), in microseconds: the geometric middle of its bucket. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i === 0 ? 0.5 : GROWTH ** (i - 0.5);
    }
    return Number.NaN;
  }
}

/** The median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** CPU time used by this process since `since`, in microseconds (user + system, every thread). */
export function cpuSince(since: NodeJS.CpuUsage): number {
  const delta = process.cpuUsage(since);
  return delta.user + delta.system;
}

export function rssMb(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}
