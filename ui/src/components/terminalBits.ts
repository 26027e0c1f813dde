// Small, xterm-free helpers shared by the terminal page and the audit pages.
import type { MsgKey, TFunc } from '../i18n';

const REASONS: Record<string, MsgKey> = {
  'the shell exited': 'term.reason.exited',
  closed: 'term.reason.closed',
  'the agent disconnected': 'term.reason.agent',
  'no browser reattached in time': 'term.reason.grace',
  'the login session ended': 'term.reason.login',
};

/** The server's end reason in the UI language when it is one we know. */
export function endReason(t: TFunc, reason: string | null | undefined): string {
  if (!reason) return '—';
  const k = REASONS[reason];
  return k ? t(k) : reason;
}

/**
 * The terminal id of a `terminals.open` audit record: the target reads `terminal N on HOST`,
 * the detail `recording term-N.cast`.
 */
export function terminalIdOfAudit(target: string | null | undefined, detail: unknown): number | null {
  const m = /^terminal (\d+)\b/.exec(target ?? '') ?? (typeof detail === 'string' ? /\bterm-(\d+)\.cast\b/.exec(detail) : null);
  return m ? Number(m[1]) : null;
}
