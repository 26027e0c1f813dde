// API client for /api/v1 (see docs/api-v1.md): same-origin cookies, the CSRF header on
// non-GET requests, and the `{error:{code,message,details}}` error shape turned into ApiError.
// It does not render anything itself: the app registers hooks for errors and auth changes.

export interface User {
  /** The server uses numbers; treated as opaque. */
  id: string | number;
  username: string;
  display_name: string;
  email: string;
  roles: string[];
  disabled: boolean;
  totp_enabled: boolean;
  must_change_password: boolean;
  language: string;
  created_at: string;
  last_login_at?: string | null;
}

export interface Me extends User {
  permissions: string[];
  csrf_token?: string;
}

export interface Role {
  name: string;
  description: string;
  permissions: string[];
  host_groups: string[];
  builtin: boolean;
}

export interface Permission {
  name: string;
  description: string;
}

export interface Token {
  id: string | number;
  name: string;
  prefix: string;
  user: string;
  created_at: string;
  expires_at?: string | null;
  last_used_at?: string | null;
  token?: string;
}

export interface AuditRecord {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string;
  source: string;
  result: 'success' | 'failure';
  status: number;
  detail: unknown;
}

export interface Session {
  id: string | number;
  created_at: string;
  last_seen_at: string;
  source: string;
  user_agent: string;
  current: boolean;
}

export interface ModuleInfo {
  key: string;
  available: boolean;
}

export interface SystemInfo {
  version: string;
  started_at: string;
  uptime_secs: number;
  modules: ModuleInfo[];
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
}

export interface LoginAnswer {
  csrf_token: string;
  must_change_password: boolean;
  user: Me;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  first_bad_seq?: number | null;
  message: string;
}

// ---------------------------------------------------------------- hosts and remote execution

export interface Maintenance {
  enabled: boolean;
  by?: string;
  since?: string;
  until?: string | null;
  reason?: string;
}

export interface Disk {
  mount: string;
  fs: string;
  size_bytes: number;
  avail_bytes: number;
}

export interface Host {
  id: string | number;
  hostname: string;
  status: 'online' | 'offline';
  last_seen_at?: string | null;
  enrolled_at: string;
  agent_version: string;
  os: string;
  kernel: string;
  arch: string;
  cpus: number;
  memory_bytes: number;
  disks: Disk[];
  ips: string[];
  uptime_secs: number;
  labels: Record<string, string>;
  groups: string[];
  maintenance?: Maintenance | null;
  /** Not in the contract; shown when the server sends it. */
  machine_id?: string | null;
}

export interface HostGroup {
  name: string;
  hosts: number;
}

export interface EnrollTokenCreated {
  id: string | number;
  token: string;
  command: string;
  expires_at: string;
}

export interface EnrollToken {
  id: string | number;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at?: string | null;
  /** The id of the host that used the token (the server sends the id). */
  used_by_host?: string | number | null;
  labels: Record<string, string>;
  groups: string[];
}

export type JobState = 'running' | 'done' | 'cancelled';
export type JobHostState = 'pending' | 'running' | 'ok' | 'failed' | 'timeout' | 'cancelled' | 'offline' | 'error';

export interface ExecTargets {
  hosts?: (string | number)[];
  groups?: string[];
  labels?: Record<string, string>;
  all?: boolean;
}

export interface JobSummary {
  id: string | number;
  created_by: string;
  created_at: string;
  argv?: string[] | null;
  command?: string | null;
  state: JobState;
  hosts_total: number;
  hosts_ok: number;
  hosts_failed: number;
}

export interface JobHost {
  host_id: string | number;
  hostname: string;
  state: JobHostState;
  exit_code?: number | null;
  duration_ms?: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  error?: string | null;
}

export interface Job extends JobSummary {
  timeout_secs: number;
  hosts: JobHost[];
}

// ---------------------------------------------------------------- web terminal

export interface TerminalRecord {
  id: number;
  host_id: string | number;
  hostname: string;
  user: string;
  started_at: string;
  ended_at?: string | null;
  exit_code?: number | null;
  end_reason: string;
  recording_url: string;
}

export interface TerminalOpened extends TerminalRecord {
  ws_url: string;
}

/** Browser → server messages of `/terminals/{id}/ws`. */
export type TermClientMsg =
  | { type: 'input'; data: string }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'close' };

/** Server → browser messages of `/terminals/{id}/ws`. */
export type TermServerMsg =
  | { type: 'output'; data: string }
  | { type: 'exit'; code: number | null; reason: string };

// ---------------------------------------------------------------- SSH push and CSV import

export type PushState = 'running' | 'ok' | 'failed';
export type PushStepState = 'pending' | 'running' | 'ok' | 'failed';

export interface PushStep {
  /** connect, host key, login, check target, check folders, copy agent, install and enroll, wait for the agent */
  name: string;
  state: PushStepState;
  /** For a failed step: what went wrong and what to do. */
  detail: string;
}

export interface PushJob {
  id: number;
  created_by: string;
  /** RFC 3339 per the contract; the server currently sends Unix seconds. Both are accepted. */
  created_at: string | number;
  address: string;
  port: number;
  user: string;
  state: PushState;
  host_key?: string | null;
  host_id?: string | number | null;
  steps: PushStep[];
}

export interface KnownHost {
  /** "addr:port" */
  target: string;
  fingerprint: string;
  first_seen: string;
  last_seen: string;
}

export interface ImportRow {
  line: number;
  address: string;
  ok: boolean;
  errors: { field: string; message: string }[];
}

/** POST /hosts/import: 200 (dry run) / 422 (a row is invalid) with `valid`/`invalid`, 201 with `pushes`. */
export interface ImportAnswer {
  rows: ImportRow[];
  valid?: number;
  invalid?: number;
  pushes?: PushJob[];
}

// ---------------------------------------------------------------- file transfer

/** PUT /hosts/{id}/files answers this. */
export interface FileUploaded {
  path: string;
  size: number;
  sha256: string;
  /** Octal, e.g. "0644". */
  mode: string;
  owner?: string | null;
}

// ---------------------------------------------------------------- monitoring (issue 4)

export type ScrapeHealth = 'up' | 'down' | 'unknown';
export type ScrapeAuth = 'none' | 'basic' | 'bearer';

/** GET /scrape-targets item. Secrets are never sent back, only which kind of auth is set. */
export interface ScrapeTarget {
  id: string | number;
  job: string;
  /** host:port */
  target: string;
  url: string;
  /** Not in every server's answer: derived from `url` when missing. */
  scheme?: string;
  metrics_path?: string;
  interval_secs: number;
  timeout_secs: number;
  labels: Record<string, string>;
  sample_limit: number;
  auth: ScrapeAuth;
  from_config: boolean;
  health: ScrapeHealth;
  last_scrape?: string | null;
  last_duration_secs?: number | null;
  last_error?: string | null;
  samples: number;
  /** The host whose agent scrapes the target (none: the server does). */
  via_host?: string | number | null;
  via_hostname?: string | null;
}

/** POST /scrape-targets and PUT /scrape-targets/{id}. PUT keeps stored secrets unless a new one or clear_auth is given. */
export interface ScrapeTargetInput {
  job: string;
  target: string;
  scheme?: string;
  metrics_path?: string;
  interval_secs?: number;
  timeout_secs?: number;
  labels?: Record<string, string>;
  sample_limit?: number;
  basic_auth?: string;
  bearer_token?: string;
  clear_auth?: boolean;
  via_host?: string | number | null;
}

/** GET /remote-write item: one remote_write destination and its queue. */
export interface RemoteWriteStatus {
  name: string;
  url: string;
  from_config: boolean;
  queued_samples: number;
  sent_samples: number;
  dropped_samples: number;
  failed_requests: number;
  last_error?: string | null;
  last_success?: string | null;
}

/** GET /hosts/{id}/processes item. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  user: string;
  name: string;
  cmdline: string;
  state: string;
  cpu_percent: number;
  rss_bytes: number;
  mem_percent: number;
  threads: number;
  started_at?: string | null;
}

export interface ProcessList {
  collected_at: string;
  total: number;
  items: ProcessInfo[];
}

// ---------------------------------------------------------------- agent fleet upgrade (issue 5)

/** GET /hosts/agent-binary: the binary the server hands to agents. */
export interface AgentBinary {
  path: string;
  version: string;
  sha256: string;
  size: number;
}

export type UpgradeRunState = 'running' | 'succeeded' | 'failed';
export type HostUpgradeState = 'pending' | 'sent' | 'succeeded' | 'failed' | 'skipped';

export interface HostUpgrade {
  host_id: string | number;
  hostname: string;
  from_version: string;
  canary: boolean;
  state: HostUpgradeState;
  message: string;
}

/** GET /hosts/upgrades/{id}; times are Unix seconds. */
export interface UpgradeRun {
  id: string | number;
  /** The version every host is upgraded to. */
  version: string;
  sha256: string;
  by: string;
  started_at: number;
  finished_at?: number | null;
  state: UpgradeRunState;
  canary: number;
  timeout_secs: number;
  message: string;
  hosts: HostUpgrade[];
}

/**
 * Orders two agent versions ("0.2.0", "1.0.0-rc.1"): negative when a < b. Numeric parts are
 * compared as numbers; a version with a pre-release suffix is older than the same version
 * without one. Unparsable parts compare as text, so the order is total.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const s = v.trim().replace(/^v/i, '');
    const dash = s.indexOf('-');
    return { core: (dash < 0 ? s : s.slice(0, dash)).split('.'), pre: dash < 0 ? '' : s.slice(dash + 1) };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < Math.max(x.core.length, y.core.length); i += 1) {
    const p = x.core[i] ?? '0';
    const q = y.core[i] ?? '0';
    const np = /^\d+$/.test(p) ? Number(p) : NaN;
    const nq = /^\d+$/.test(q) ? Number(q) : NaN;
    const c = Number.isNaN(np) || Number.isNaN(nq) ? p.localeCompare(q) : np - nq;
    if (c) return c;
  }
  if (x.pre === y.pre) return 0;
  if (!x.pre) return 1;
  if (!y.pre) return -1;
  return x.pre.localeCompare(y.pre, undefined, { numeric: true });
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** The whole JSON body of the error answer (for routes that answer data with an error status). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>, body?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? {};
    this.body = body;
  }
}

export interface RequestOptions {
  /** Do not report the error through the global error hook (the caller shows it). */
  silent?: boolean;
  /** Do not treat 401 / 403 password_change_required as a change of the session. */
  noAuthRedirect?: boolean;
  /** Answer the body as text instead of parsing JSON (e.g. an asciicast recording). */
  text?: boolean;
}

interface Hooks {
  onError: (err: ApiError) => void;
  onUnauthenticated: () => void;
  onPasswordChangeRequired: () => void;
}

let csrfToken: string | null = null;
let hooks: Hooks = {
  onError: () => undefined,
  onUnauthenticated: () => undefined,
  onPasswordChangeRequired: () => undefined,
};

export function setCsrfToken(token: string | null | undefined): void {
  csrfToken = token ?? null;
}

export function setApiHooks(h: Partial<Hooks>): void {
  hooks = { ...hooks, ...h };
}

export const API_BASE = '/api/v1';

type Query = Record<string, string | number | boolean | null | undefined>;

export function queryString(q?: Query): string {
  if (!q) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

async function request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: opts.text ? '*/*' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const err = new ApiError(0, 'network_error', e instanceof Error ? e.message : String(e));
    if (!opts.silent) hooks.onError(err);
    throw err;
  }

  if (res.ok) {
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (opts.text) return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  }

  let bodyText = '';
  try {
    bodyText = await res.text();
  } catch {
    // no body
  }
  throw failedAnswer(res.status, res.statusText, bodyText, opts);
}

/**
 * The ApiError for a failed answer (status, status text, body text), after running the same
 * hooks as the JSON requests (401 and password_change_required change the session, the rest is
 * reported unless `silent`). For callers that talk to the API without request() (raw bodies).
 */
export function failedAnswer(status: number, statusText: string, bodyText: string, opts: RequestOptions = {}): ApiError {
  let code = status ? 'http_' + status : 'network_error';
  let message = statusText || `HTTP ${status}`;
  let details: Record<string, unknown> | undefined;
  let data: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  try {
    data = JSON.parse(bodyText) as typeof data;
    if (data?.error) {
      code = data.error.code ?? code;
      message = data.error.message ?? message;
      details = data.error.details ?? undefined;
    }
  } catch {
    // not JSON: keep the status text
  }
  const err = new ApiError(status, code, message, details, data);

  if (!opts.noAuthRedirect) {
    if (status === 401) {
      hooks.onUnauthenticated();
      return err;
    }
    if (status === 403 && code === 'password_change_required') {
      hooks.onPasswordChangeRequired();
      return err;
    }
  }
  if (!opts.silent) hooks.onError(err);
  return err;
}

/** The CSRF header for a mutation sent without request() (empty before sign-in). */
export function csrfHeaders(): Record<string, string> {
  return csrfToken ? { 'X-CSRF-Token': csrfToken } : {};
}

export const api = {
  get: <T>(path: string, query?: Query, opts?: RequestOptions) => request<T>('GET', path + queryString(query), undefined, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body ?? {}, opts),
  put: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, body ?? {}, opts),
  del: <T = void>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts),
  text: (path: string, opts?: RequestOptions) => request<string>('GET', path, undefined, { ...opts, text: true }),
};

export function hasPermission(me: Me | null | undefined, perm: string): boolean {
  if (!me) return false;
  const p = me.permissions ?? [];
  if (p.includes(perm) || p.includes('*')) return true;
  // a "<prefix>:*" grant covers every permission of the prefix
  const prefix = perm.split(':')[0];
  return p.includes(`${prefix}:*`);
}
