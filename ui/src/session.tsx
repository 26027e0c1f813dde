// The signed-in user (Me) shared with every page, plus helpers to format times.
// The session itself lives in the HttpOnly cookie; this only mirrors what /auth/me says.
import { createContext, useContext } from 'react';
import dayjs from 'dayjs';
import type { Me } from './api';
import { hasPermission } from './api';

export interface SessionCtx {
  me: Me;
  setMe: (me: Me) => void;
  refreshMe: () => Promise<void>;
  logout: () => Promise<void>;
  /** Called after the session was ended server-side (e.g. "sign out everywhere"). */
  sessionEnded: () => void;
}

export const SessionContext = createContext<SessionCtx | null>(null);

export function useSession(): SessionCtx {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export function useCan(): (perm: string) => boolean {
  const { me } = useSession();
  return (perm: string) => hasPermission(me, perm);
}

export function fmtTime(v: string | null | undefined): string {
  if (!v) return '—';
  const d = dayjs(v);
  return d.isValid() ? d.format('YYYY-MM-DD HH:mm:ss') : v;
}
