// Client for the server's Prometheus HTTP API (`/prometheus/api/v1`, docs/api-v1.md "Metrics"),
// plus what the metric charts share: time ranges, the step for a range, series names from
// labels and value formatting by unit. The session cookie authenticates (GET only: no CSRF).
import { failedAnswer } from './api';

export const PROM_BASE = '/prometheus/api/v1';

export type Labels = Record<string, string>;
/** [unix seconds, "value"] as Prometheus sends it. */
export type PromSample = [number, string];

export interface MatrixSeries {
  metric: Labels;
  values: PromSample[];
}

export interface VectorSample {
  metric: Labels;
  value: PromSample;
}

export type InstantData =
  | { resultType: 'vector'; result: VectorSample[] }
  | { resultType: 'matrix'; result: MatrixSeries[] }
  | { resultType: 'scalar'; result: PromSample }
  | { resultType: 'string'; result: PromSample };

export interface RangeData {
  resultType: 'matrix';
  result: MatrixSeries[];
}

/** A failed Prometheus answer: `errorType` ("bad_data", "execution", …) and the server's `error` text. */
export class PromError extends Error {
  readonly status: number;
  readonly errorType: string;

  constructor(status: number, errorType: string, message: string) {
    super(message);
    this.status = status;
    this.errorType = errorType;
  }
}

type Params = Record<string, string | number | undefined>;

/** GET a Prometheus API path; answers `data` or throws PromError (AbortError when aborted). */
export async function promGet<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) qs.set(k, String(v));
  const q = qs.toString();
  let res: Response;
  try {
    res = await fetch(PROM_BASE + path + (q ? '?' + q : ''), {
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new PromError(0, 'network_error', e instanceof Error ? e.message : String(e));
  }
  const text = await res.text();
  let body: { status?: string; data?: unknown; errorType?: string; error?: string } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  if (res.ok && body?.status === 'success') return body.data as T;
  if (body?.status === 'error' && body.error) throw new PromError(res.status, body.errorType ?? 'error', body.error);
  // Not a Prometheus answer: the usual API error (401 ends the session, 403 names the permission).
  const err = failedAnswer(res.status, res.statusText, text, { silent: true });
  throw new PromError(res.status, err.code, err.message);
}

export const isAbort = (e: unknown) => e instanceof DOMException && e.name === 'AbortError';

// ---------------------------------------------------------------- time ranges and steps

export type TimeRange = { kind: 'last'; secs: number } | { kind: 'abs'; start: number; end: number };

/** The quick ranges of the picker, in seconds. */
export const RANGE_PRESETS = [15 * 60, 3600, 6 * 3600, 24 * 3600, 7 * 86400] as const;

export const DEFAULT_RANGE: TimeRange = { kind: 'last', secs: 3600 };

/** [start, end] in Unix seconds (now for a relative range). */
export function resolveRange(r: TimeRange, now = Date.now() / 1000): [number, number] {
  if (r.kind === 'abs') return [r.start, r.end];
  return [now - r.secs, now];
}

/** Steps the charts use: at least 15 s (the agents' interval), then round numbers. */
const STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
export const MAX_POINTS = 300;

/** The step (seconds) that keeps a range at ≤ MAX_POINTS points per series. */
export function stepFor(start: number, end: number): number {
  const want = Math.max(0, end - start) / MAX_POINTS;
  for (const s of STEPS) if (s >= want) return s;
  return Math.ceil(want / 86400) * 86400;
}

/** The window for rate() at a step (like Grafana's $__rate_interval): ≥ 4 samples of 15 s, ≥ step + one sample. */
export function rateWindow(step: number): string {
  return `${Math.max(60, step + 15)}s`;
}

/** Start aligned down to the step so refreshes evaluate at the same instants. */
export function alignStart(start: number, step: number): number {
  return Math.floor(start / step) * step;
}

/** `"…"` for a PromQL string (label values, e.g. a hostname). */
export function promString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** Prometheus' text form of a series: `name{a="b", c="d"}`. */
export function seriesName(metric: Labels): string {
  const name = metric.__name__ ?? '';
  const rest = Object.keys(metric)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${promString(metric[k])}`);
  if (!rest.length) return name || '{}';
  return `${name}{${rest.join(', ')}}`;
}

/** Samples as chart points [ms, value]; a gap longer than two steps gets a null so the line breaks there. */
export function toPoints(values: PromSample[], step: number): [number, number | null][] {
  const out: [number, number | null][] = [];
  let prev: number | null = null;
  for (const [t, v] of values) {
    if (prev !== null && t - prev > step * 2) out.push([(prev + step) * 1000, null]);
    const n = Number(v);
    out.push([t * 1000, Number.isFinite(n) ? n : null]);
    prev = t;
  }
  return out;
}

// ---------------------------------------------------------------- units

export type Unit = 'percent' | 'bytes' | 'bytesPerSec' | 'number';

function trim(n: number, digits: number): string {
  return Number(n.toFixed(digits)).toString();
}

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const SI = ['', 'k', 'M', 'G', 'T', 'P'];

function scaled(v: number, base: number, names: string[], digits: number): string {
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < names.length - 1) {
    x /= base;
    i += 1;
  }
  return `${v < 0 ? '-' : ''}${trim(x, x >= 100 ? Math.min(digits, 1) : digits)}${names[i] ? ' ' + names[i] : ''}`;
}

/** A value with its unit: 12.5%, 3.2 MiB/s, 1.5 GiB, 0.42, 12.3k. */
export function fmtValue(v: number | null | undefined, unit: Unit, digits = 2): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'percent':
      return `${trim(v, Math.abs(v) >= 10 ? 1 : digits)}%`;
    case 'bytes':
      return scaled(v, 1024, IEC, digits);
    case 'bytesPerSec':
      return `${scaled(v, 1024, IEC, digits)}/s`;
    default:
      return Math.abs(v) >= 10000 ? scaled(v, 1000, SI, digits) : trim(v, Math.abs(v) >= 100 ? 1 : digits);
  }
}

/** A raw sample value as Prometheus writes it ("NaN", "+Inf", or the number). */
export function fmtRaw(v: string): string {
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  return String(Number(n.toPrecision(12)));
}
