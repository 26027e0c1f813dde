// The web terminal of one host (route /hosts/:id/terminal; docs/api-v1.md "Web terminal").
// POST /hosts/{id}/terminal opens a shell sized to the fitted xterm, then the page talks to
// /terminals/{id}/ws: keystrokes and resizes out, output and the exit event in.
//
// Reattach: the terminal id is kept in sessionStorage per host, so a reload or coming back
// to the page within 60 s reattaches to the same shell (the server repaints the recent
// output); a refused reattach while the server answers means the session is gone. A socket
// that drops without an exit event is reconnected a few times with backoff; a socket the
// server closes cleanly (another window took the terminal over) is not, to avoid two
// windows stealing it from each other.
//
// This module is the heavy, lazily loaded chunk (xterm.js); nothing else imports it.
import { useCallback, useEffect, useRef, useState } from 'react';
import { Alert, Button, Popconfirm, Space, Tag, Tooltip, Typography } from 'antd';
import { ArrowLeftOutlined, CloseCircleOutlined, PlusOutlined, ReloadOutlined } from '@ant-design/icons';
import { useNavigate, useParams } from 'react-router-dom';
import { api, ApiError, type Host, type TermClientMsg, type TerminalOpened, type TermServerMsg } from '../api';
import { useT, type MsgKey } from '../i18n';
import { useCan } from '../session';
import { NoPermission } from '../components/common';
import { createTerminal } from '../components/xterm';
import { endReason } from '../components/terminalBits';

type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'detached' | 'ended';

type Banner =
  | { kind: 'exit'; code: number | null; reason: string }
  | { kind: 'closed' }
  | { kind: 'gone' }
  | { kind: 'detached' }
  | { kind: 'lost' }
  | { kind: 'reconnecting' }
  | { kind: 'openFailed'; message: string };

interface Status {
  state: ConnState;
  attempt?: number;
  termId?: number;
  banner?: Banner;
}

interface Stored {
  id: number;
  ws_url: string;
}

/** The exported controls of the running connection (set by the effect). */
interface Controls {
  close: () => void;
  openNew: () => void;
  reconnect: () => void;
}

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const RESIZE_DEBOUNCE_MS = 150;

const storeKey = (hostId: string) => `omp.terminal.${hostId}`;

function readStored(hostId: string): Stored | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(storeKey(hostId)) ?? 'null') as Stored | null;
    return v && typeof v.ws_url === 'string' && v.ws_url.startsWith('/') ? v : null;
  } catch {
    return null;
  }
}

function writeStored(hostId: string, s: Stored): void {
  try {
    sessionStorage.setItem(storeKey(hostId), JSON.stringify({ id: s.id, ws_url: s.ws_url }));
  } catch {
    // storage blocked: no reattach after a reload, nothing else lost
  }
}

function clearStored(hostId: string, id?: number): void {
  try {
    const cur = readStored(hostId);
    if (id === undefined || !cur || cur.id === id) sessionStorage.removeItem(storeKey(hostId));
  } catch {
    // storage blocked
  }
}

/**
 * One POST per host at a time: React's development double mount (and a fast double click)
 * must not open two shells.
 */
const pendingOpen = new Map<string, Promise<TerminalOpened>>();

function openTerminal(hostId: string, cols: number, rows: number): Promise<TerminalOpened> {
  let p = pendingOpen.get(hostId);
  if (!p) {
    p = api
      .post<TerminalOpened>(`/hosts/${encodeURIComponent(hostId)}/terminal`, { cols, rows }, { silent: true })
      .then((r) => {
        writeStored(hostId, r);
        return r;
      })
      .finally(() => pendingOpen.delete(hostId));
    pendingOpen.set(hostId, p);
  }
  return p;
}

/** True when the server answers (so a refused WebSocket was refused on purpose). */
async function serverAnswers(): Promise<boolean> {
  try {
    await api.get('/auth/me', undefined, { silent: true });
    return true;
  } catch (e) {
    return e instanceof ApiError && e.status > 0 && e.status < 500;
  }
}

export default function TerminalPage() {
  const can = useCan();
  const { id = '' } = useParams();
  if (!can('terminal:open')) return <NoPermission />;
  return <TerminalView key={id} hostId={id} />;
}

function TerminalView({ hostId }: { hostId: string }) {
  const t = useT();
  const navigate = useNavigate();
  const screenRef = useRef<HTMLDivElement>(null);
  const ctl = useRef<Controls | null>(null);
  const [status, setStatus] = useState<Status>({ state: 'connecting' });
  const [host, setHost] = useState<Host | null>(null);

  useEffect(() => {
    api
      .get<Host>(`/hosts/${encodeURIComponent(hostId)}`, undefined, { silent: true })
      .then(setHost)
      .catch(() => undefined);
  }, [hostId]);

  useEffect(() => {
    const el = screenRef.current;
    if (!el) return;
    const { term, fit } = createTerminal();
    term.open(el);

    let disposed = false;
    let ws: WebSocket | null = null;
    let cur: Stored | null = null;
    let exited = false;
    let userClosing = false;
    let attempts = 0;
    let retryTimer: number | undefined;
    let fitTimer: number | undefined;
    let resizeTimer: number | undefined;
    let closeFallback: number | undefined;
    /** The next output after (re)attaching is the server's repaint: clear the screen first. */
    let repaint = false;

    const update = (s: Status) => {
      if (!disposed) setStatus(s);
    };
    const safeFit = () => {
      try {
        if (el.clientWidth > 0 && el.clientHeight > 0) fit.fit();
      } catch {
        // not laid out yet
      }
    };
    const send = (m: TermClientMsg) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
    };
    const sendResize = () => send({ type: 'resize', cols: term.cols, rows: term.rows });
    const setInput = (on: boolean) => {
      term.options.disableStdin = !on;
      term.options.cursorBlink = on;
    };

    const ended = (banner: Banner) => {
      if (cur) clearStored(hostId, cur.id);
      setInput(false);
      update({ state: 'ended', termId: cur?.id, banner });
    };

    const connect = () => {
      if (disposed || !cur) return;
      window.clearTimeout(retryTimer);
      const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
      const sock = new WebSocket(`${proto}//${window.location.host}${cur.ws_url}`);
      ws = sock;
      let wasOpen = false;
      repaint = true;
      sock.onopen = () => {
        if (ws !== sock) return;
        wasOpen = true;
        attempts = 0;
        setInput(true);
        update({ state: 'connected', termId: cur?.id });
        safeFit();
        sendResize();
        term.focus();
      };
      sock.onmessage = (ev) => {
        if (ws !== sock || typeof ev.data !== 'string') return;
        let m: TermServerMsg;
        try {
          m = JSON.parse(ev.data) as TermServerMsg;
        } catch {
          return;
        }
        if (m.type === 'output') {
          if (repaint) {
            term.reset();
            repaint = false;
          }
          term.write(m.data);
        } else if (m.type === 'exit') {
          exited = true;
          window.clearTimeout(closeFallback);
          ended(userClosing ? { kind: 'closed' } : { kind: 'exit', code: m.code ?? null, reason: m.reason ?? '' });
        }
      };
      sock.onclose = (ev) => {
        if (ws !== sock) return;
        ws = null;
        if (disposed || exited) return;
        if (userClosing) {
          window.clearTimeout(closeFallback);
          ended({ kind: 'closed' });
          return;
        }
        if (wasOpen && (ev.code === 1000 || ev.code === 1005)) {
          // The server closed it on purpose without an exit event: another window attached.
          setInput(false);
          update({ state: 'detached', termId: cur?.id, banner: { kind: 'detached' } });
          return;
        }
        void retry(wasOpen);
      };
    };

    const retry = async (wasOpen: boolean) => {
      if (!wasOpen && (await serverAnswers())) {
        // The server is there but refused the WebSocket: the session is gone (404).
        if (!disposed && !ws) ended({ kind: 'gone' });
        return;
      }
      if (disposed || ws) return;
      if (attempts >= RETRY_DELAYS_MS.length) {
        setInput(false);
        update({ state: 'ended', termId: cur?.id, banner: { kind: 'lost' } });
        return;
      }
      const delay = RETRY_DELAYS_MS[attempts];
      attempts += 1;
      setInput(false);
      update({ state: 'reconnecting', attempt: attempts, termId: cur?.id, banner: { kind: 'reconnecting' } });
      retryTimer = window.setTimeout(connect, delay);
    };

    const openNew = () => {
      window.clearTimeout(retryTimer);
      if (ws) {
        const old = ws;
        ws = null;
        old.close(1000);
      }
      if (cur) clearStored(hostId, cur.id);
      cur = null;
      exited = false;
      userClosing = false;
      attempts = 0;
      term.reset();
      setInput(false);
      update({ state: 'connecting' });
      safeFit();
      openTerminal(hostId, term.cols, term.rows)
        .then((r) => {
          if (disposed) return; // stays in sessionStorage: coming back reattaches
          cur = { id: r.id, ws_url: r.ws_url };
          connect();
        })
        .catch((e) => {
          const message = e instanceof ApiError ? e.message : String(e);
          update({ state: 'ended', banner: { kind: 'openFailed', message } });
        });
    };

    const close = () => {
      if (!cur) return;
      const id = cur.id;
      userClosing = true;
      if (ws && ws.readyState === WebSocket.OPEN) {
        send({ type: 'close' });
        // the server closes the socket; should it not, end the session over HTTP
        closeFallback = window.setTimeout(() => {
          void api.del(`/terminals/${id}`, { silent: true }).catch(() => undefined);
          ws?.close(1000);
        }, 3000);
      } else {
        window.clearTimeout(retryTimer);
        void api
          .del(`/terminals/${id}`, { silent: true })
          .catch(() => undefined)
          .finally(() => {
            if (!exited) ended({ kind: 'closed' });
          });
      }
    };

    const reconnect = () => {
      if (!cur) return;
      attempts = 0;
      userClosing = false;
      update({ state: 'connecting', termId: cur.id });
      connect();
    };

    ctl.current = { close, openNew, reconnect };

    const onData = term.onData((data) => send({ type: 'input', data }));
    const onResize = term.onResize(() => {
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(sendResize, RESIZE_DEBOUNCE_MS);
    });
    const observer = new ResizeObserver(() => {
      window.clearTimeout(fitTimer);
      fitTimer = window.setTimeout(safeFit, RESIZE_DEBOUNCE_MS);
    });
    observer.observe(el);
    safeFit();

    const stored = readStored(hostId);
    if (stored) {
      cur = stored;
      update({ state: 'connecting', termId: stored.id });
      connect();
    } else {
      openNew();
    }

    return () => {
      disposed = true;
      ctl.current = null;
      window.clearTimeout(retryTimer);
      window.clearTimeout(fitTimer);
      window.clearTimeout(resizeTimer);
      window.clearTimeout(closeFallback);
      observer.disconnect();
      onData.dispose();
      onResize.dispose();
      if (ws) {
        const old = ws;
        ws = null;
        // leaving the page detaches: the shell waits 60 s for us to come back
        old.close(1000);
      }
      term.dispose();
    };
  }, [hostId]);

  const onNew = useCallback(() => ctl.current?.openNew(), []);
  const onReconnect = useCallback(() => ctl.current?.reconnect(), []);
  const onClose = useCallback(() => ctl.current?.close(), []);

  const { state, banner } = status;
  const stateColor: Record<ConnState, string | undefined> = {
    connecting: 'blue',
    connected: 'green',
    reconnecting: 'orange',
    detached: 'orange',
    ended: undefined,
  };
  const stateText =
    state === 'reconnecting' ? t('term.state.reconnecting', { n: status.attempt ?? 1 }) : t(`term.state.${state}` as MsgKey);

  const newButton = (
    <Button size="small" type="primary" icon={<PlusOutlined />} onClick={onNew} data-testid="terminal-new">
      {t('term.new')}
    </Button>
  );
  const reconnectButton = (
    <Button size="small" icon={<ReloadOutlined />} onClick={onReconnect} data-testid="terminal-reconnect">
      {t('term.reconnect')}
    </Button>
  );

  let alert: React.ReactNode = null;
  if (banner) {
    const common = { showIcon: true, style: { marginBottom: 8 }, 'data-testid': 'terminal-banner', 'data-kind': banner.kind };
    switch (banner.kind) {
      case 'exit':
        alert = (
          <Alert
            {...common}
            type={banner.code === 0 ? 'info' : 'warning'}
            title={t('term.exitTitle')}
            description={
              <span data-testid="terminal-exit">
                {banner.code === null || banner.code === undefined
                  ? endReason(t, banner.reason)
                  : t('term.exitCode', { reason: endReason(t, banner.reason), code: banner.code })}
              </span>
            }
            action={newButton}
          />
        );
        break;
      case 'closed':
        alert = <Alert {...common} type="info" title={t('term.closedTitle')} description={t('term.closedText')} action={newButton} />;
        break;
      case 'gone':
        alert = <Alert {...common} type="warning" title={t('term.goneTitle')} description={t('term.goneText')} action={newButton} />;
        break;
      case 'detached':
        alert = (
          <Alert
            {...common}
            type="warning"
            title={t('term.detachedTitle')}
            description={t('term.detachedText')}
            action={
              <Space vertical size={4}>
                {reconnectButton}
                {newButton}
              </Space>
            }
          />
        );
        break;
      case 'lost':
        alert = (
          <Alert
            {...common}
            type="error"
            title={t('term.lostTitle')}
            description={t('term.lostText')}
            action={
              <Space vertical size={4}>
                {reconnectButton}
                {newButton}
              </Space>
            }
          />
        );
        break;
      case 'reconnecting':
        alert = <Alert {...common} type="warning" title={t('term.reconnectingText')} />;
        break;
      case 'openFailed':
        alert = (
          <Alert
            {...common}
            type="error"
            title={t('term.openFailedTitle')}
            description={banner.message}
            action={
              <Button size="small" icon={<ReloadOutlined />} onClick={onNew} data-testid="terminal-new">
                {t('term.new')}
              </Button>
            }
          />
        );
        break;
    }
  }

  const canClose = status.termId !== undefined && state !== 'ended';

  return (
    <div className="omp-terminal-page" data-testid="terminal-page">
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', gap: 12, flexWrap: 'wrap', marginBottom: 8 }}>
        <Space align="center" wrap>
          <Button icon={<ArrowLeftOutlined />} onClick={() => navigate(`/hosts/${encodeURIComponent(hostId)}`)} data-testid="terminal-back">
            {t('term.back')}
          </Button>
          <Typography.Title level={4} style={{ margin: 0 }} data-testid="terminal-title">
            {t('term.title')} — {host?.hostname ?? hostId}
          </Typography.Title>
          <Tag color={stateColor[state]} data-testid="terminal-status" data-state={state}>
            {stateText}
          </Tag>
          {status.termId !== undefined && (
            <Tooltip title={t('term.recorded')}>
              <Typography.Text type="secondary" data-testid="terminal-id" data-id={status.termId}>
                {t('term.idTag', { id: status.termId })}
              </Typography.Text>
            </Tooltip>
          )}
        </Space>
        <Space wrap>
          {canClose && (
            <Popconfirm
              title={t('term.closeConfirm')}
              okText={t('term.close')}
              cancelText={t('common.cancel')}
              okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
              onConfirm={onClose}
            >
              <Button danger icon={<CloseCircleOutlined />} data-testid="terminal-close">
                {t('term.close')}
              </Button>
            </Popconfirm>
          )}
        </Space>
      </div>
      {alert}
      <div className="omp-terminal-frame">
        <div ref={screenRef} className="omp-terminal-screen" data-testid="terminal-screen" data-state={state} />
      </div>
    </div>
  );
}
