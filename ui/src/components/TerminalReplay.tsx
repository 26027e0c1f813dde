// Replay of a recorded terminal session: GET /terminals/{id}/recording (asciicast v2: a JSON
// header line, then `[seconds, "o"|"r", data]` lines) played into a read-only xterm, with
// play/pause, 1x/2x/4x, a progress slider, "skip idle > 2 s" and a download link.
// Lazily loaded (it carries xterm.js), like the terminal page.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Alert, Button, Modal, Segmented, Slider, Space, Spin, Switch, Tooltip, Typography } from 'antd';
import { CaretRightOutlined, DownloadOutlined, PauseOutlined } from '@ant-design/icons';
import { api, API_BASE, ApiError } from '../api';
import { useT } from '../i18n';
import { fmtTime } from '../session';
import { createTerminal, type Terminal } from './xterm';

interface CastHeader {
  version: number;
  width: number;
  height: number;
  timestamp?: number;
  title?: string;
}

interface CastEvent {
  /** Seconds since the start, as recorded. */
  t: number;
  kind: string;
  data: string;
}

interface Cast {
  header: CastHeader;
  events: CastEvent[];
}

const IDLE_LIMIT = 2;
const TICK_MS = 40;

export function parseCast(text: string): Cast | null {
  const lines = text.split('\n');
  let header: CastHeader;
  try {
    header = JSON.parse(lines[0]) as CastHeader;
  } catch {
    return null;
  }
  if (!header || header.version !== 2) return null;
  const events: CastEvent[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string' && typeof v[2] === 'string') {
        // keep the timeline monotonic even if a line is out of order
        last = Math.max(last, v[0]);
        events.push({ t: last, kind: v[1], data: v[2] });
      }
    } catch {
      // a torn last line of a recording still being written
    }
  }
  return { header, events };
}

/** The play time of each event, with pauses longer than IDLE_LIMIT cut when asked. */
function timeline(events: CastEvent[], skipIdle: boolean): number[] {
  const out: number[] = [];
  let prev = 0;
  let at = 0;
  for (const e of events) {
    const gap = Math.max(0, e.t - prev);
    at += skipIdle ? Math.min(gap, IDLE_LIMIT) : gap;
    prev = e.t;
    out.push(at);
  }
  return out;
}

function parseSize(s: string): [number, number] | null {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) return null;
  const c = Number(m[1]);
  const r = Number(m[2]);
  return c > 0 && r > 0 && c <= 1000 && r <= 500 ? [c, r] : null;
}

function fmtClock(s: number): string {
  const v = Math.max(0, Math.floor(s));
  const h = Math.floor(v / 3600);
  const m = Math.floor((v % 3600) / 60);
  const sec = v % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0');
  return `${h ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

export interface TerminalReplayProps {
  id: number | string;
  /** Shown in the title when known (from the sessions table). */
  user?: string;
  hostname?: string;
  startedAt?: string;
  onClose: () => void;
}

export default function TerminalReplay({ id, user, hostname, startedAt, onClose }: TerminalReplayProps) {
  const t = useT();
  const [cast, setCast] = useState<Cast | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let gone = false;
    setCast(null);
    setError(null);
    api
      .text(`/terminals/${encodeURIComponent(String(id))}/recording`, { silent: true })
      .then((text) => {
        if (gone) return;
        const c = parseCast(text);
        if (c) setCast(c);
        else setError(t('replay.invalid'));
      })
      .catch((e) => {
        if (!gone) setError(e instanceof ApiError ? e.message : String(e));
      });
    return () => {
      gone = true;
    };
  }, [id]); // eslint-disable-line react-hooks/exhaustive-deps

  const who = user && hostname ? `${user}@${hostname}` : cast?.header.title;
  const when = startedAt
    ? fmtTime(startedAt)
    : cast?.header.timestamp
      ? fmtTime(new Date(cast.header.timestamp * 1000).toISOString())
      : '';
  const downloadUrl = `${API_BASE}/terminals/${encodeURIComponent(String(id))}/recording`;

  return (
    <Modal
      open
      onCancel={onClose}
      width="min(1280px, 96vw)"
      title={
        <Space wrap size={12}>
          <span>{t('replay.title', { id: String(id) })}</span>
          {who && <Typography.Text type="secondary" className="omp-mono">{who}</Typography.Text>}
          {when && <Typography.Text type="secondary">{when}</Typography.Text>}
        </Space>
      }
      footer={
        <Space>
          <Button icon={<DownloadOutlined />} href={downloadUrl} download={`omp-terminal-${id}.cast`} data-testid="replay-download">
            {t('replay.download')}
          </Button>
          <Button onClick={onClose} data-testid="replay-close">
            {t('common.close')}
          </Button>
        </Space>
      }
      destroyOnHidden
      data-testid="replay-modal"
    >
      {error ? (
        <Alert type="error" showIcon title={t('replay.failed')} description={error} data-testid="replay-error" />
      ) : !cast ? (
        <div style={{ padding: 60, textAlign: 'center' }}>
          <Spin />
          <div style={{ marginTop: 12 }}>
            <Typography.Text type="secondary">{t('replay.loading')}</Typography.Text>
          </div>
        </div>
      ) : (
        <Player cast={cast} />
      )}
    </Modal>
  );
}

interface PlayState {
  term: Terminal | null;
  times: number[];
  /** Events already written to the terminal. */
  applied: number;
  pos: number;
  last: number;
  playing: boolean;
  speed: number;
}

function Player({ cast }: { cast: Cast }) {
  const t = useT();
  const screenRef = useRef<HTMLDivElement>(null);
  const [skipIdle, setSkipIdle] = useState(true);
  const [speed, setSpeed] = useState(1);
  const [playing, setPlaying] = useState(false);
  const [pos, setPos] = useState(0);
  const times = useMemo(() => timeline(cast.events, skipIdle), [cast, skipIdle]);
  const duration = times.length ? times[times.length - 1] : 0;
  const st = useRef<PlayState>({ term: null, times, applied: 0, pos: 0, last: 0, playing: false, speed: 1 });
  const width = cast.header.width || 80;
  const height = cast.header.height || 24;

  /** Brings the screen to play time `p` (replaying from the start when going back). */
  const applyTo = useCallback(
    (p: number) => {
      const s = st.current;
      const term = s.term;
      if (!term) return;
      let target = s.applied;
      while (target < s.times.length && s.times[target] <= p) target++;
      while (target > 0 && s.times[target - 1] > p) target--;
      if (target < s.applied) {
        term.reset();
        term.resize(width, height);
        s.applied = 0;
      }
      let buf = '';
      for (let i = s.applied; i < target; i++) {
        const e = cast.events[i];
        if (e.kind === 'o') buf += e.data;
        else if (e.kind === 'r') {
          const size = parseSize(e.data);
          if (size) {
            if (buf) term.write(buf);
            buf = '';
            term.resize(size[0], size[1]);
          }
        }
      }
      if (buf) term.write(buf);
      s.applied = target;
    },
    [cast, width, height],
  );

  useEffect(() => {
    const el = screenRef.current;
    if (!el) return;
    const { term } = createTerminal({ cols: width, rows: height, disableStdin: true, cursorBlink: false, fontSize: 13 });
    term.open(el);
    st.current.term = term;
    st.current.applied = 0;
    st.current.pos = 0;
    // autoplay
    st.current.playing = true;
    st.current.last = performance.now();
    setPlaying(true);
    return () => {
      st.current.term = null;
      st.current.playing = false;
      term.dispose();
    };
  }, [width, height]);

  // a new timeline (skip idle toggled) keeps the screen: the position follows the last event shown
  useEffect(() => {
    const s = st.current;
    s.times = times;
    s.pos = s.applied > 0 ? times[s.applied - 1] : 0;
    setPos(s.pos);
  }, [times]);

  useEffect(() => {
    st.current.speed = speed;
  }, [speed]);

  useEffect(() => {
    const iv = window.setInterval(() => {
      const s = st.current;
      if (!s.playing) return;
      const now = performance.now();
      const end = s.times.length ? s.times[s.times.length - 1] : 0;
      s.pos = Math.min(end, s.pos + ((now - s.last) / 1000) * s.speed);
      s.last = now;
      applyTo(s.pos);
      setPos(s.pos);
      if (s.pos >= end) {
        s.playing = false;
        setPlaying(false);
      }
    }, TICK_MS);
    return () => window.clearInterval(iv);
  }, [applyTo]);

  const toggle = () => {
    const s = st.current;
    if (s.playing) {
      s.playing = false;
      setPlaying(false);
      return;
    }
    if (s.pos >= duration) {
      s.pos = 0;
      applyTo(0);
    }
    s.last = performance.now();
    s.playing = true;
    setPlaying(true);
  };

  const seek = (v: number) => {
    const s = st.current;
    s.pos = Math.max(0, Math.min(duration, v));
    s.last = performance.now();
    applyTo(s.pos);
    setPos(s.pos);
  };

  return (
    <div data-testid="replay-player">
      <div style={{ display: 'flex', alignItems: 'center', gap: 12, flexWrap: 'wrap', marginBottom: 8 }}>
        <Button
          type="primary"
          icon={playing ? <PauseOutlined /> : <CaretRightOutlined />}
          onClick={toggle}
          data-testid="replay-play"
          data-playing={playing ? 'true' : 'false'}
        >
          {playing ? t('replay.pause') : t('replay.play')}
        </Button>
        <Space size={6}>
          <Typography.Text type="secondary">{t('replay.speed')}</Typography.Text>
          <Segmented
            size="small"
            value={speed}
            onChange={(v) => setSpeed(Number(v))}
            options={[1, 2, 4].map((n) => ({ value: n, label: <span data-testid={`replay-speed-${n}`}>{n}x</span> }))}
          />
        </Space>
        <Tooltip title={t('replay.skipIdleHelp')}>
          <Space size={6}>
            <Switch size="small" checked={skipIdle} onChange={setSkipIdle} data-testid="replay-skip-idle" />
            <span>{t('replay.skipIdle')}</span>
          </Space>
        </Tooltip>
        <Typography.Text type="secondary" className="omp-mono" data-testid="replay-time">
          {fmtClock(pos)} / {fmtClock(duration)}
        </Typography.Text>
      </div>
      <Slider
        min={0}
        max={Math.max(duration, 0.001)}
        step={0.01}
        value={Math.min(pos, duration)}
        onChange={(v) => seek(Number(v))}
        tooltip={{ formatter: (v) => fmtClock(Number(v ?? 0)) }}
        style={{ margin: '4px 6px 12px' }}
        data-testid="replay-progress"
      />
      {!cast.events.some((e) => e.kind === 'o') && (
        <Alert type="info" showIcon title={t('replay.empty')} style={{ marginBottom: 8 }} />
      )}
      <div className="omp-replay-frame">
        <div ref={screenRef} data-testid="replay-screen" style={{ display: 'inline-block' }} />
      </div>
    </div>
  );
}
