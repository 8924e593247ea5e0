import { CostEstimate } from './types';

/** Decimal units, as a progress bar or a network graph shows them. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '? B';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[u]}`;
}

export function formatEstimate(e: CostEstimate): string {
  const chunks = `${e.chunks.toLocaleString('en-US')} ${e.chunks === 1 ? 'chunk' : 'chunks'}`;
  return `≈ ${chunks}, ${formatBytes(e.bytes)} to scan`;
}
