// The "Metrics" card of the host detail page (metrics:read; loaded lazily with ECharts): CPU by
// mode, memory, load, network, disk and filesystem charts of the host (`instance` = hostname)
// from the Prometheus API, over a picked time range, refreshed every 15 s when asked.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Alert, Button, Card, Col, Row, Space, Tooltip, Typography } from 'antd';
import { ReloadOutlined } from '@ant-design/icons';
import type { Host } from '../api';
import { useT, type MsgKey, type TFunc } from '../i18n';
import {
  alignStart,
  DEFAULT_RANGE,
  isAbort,
  promGet,
  promString,
  rateWindow,
  resolveRange,
  stepFor,
  toPoints,
  type Labels,
  type RangeData,
  type TimeRange,
  type Unit,
} from '../prom';
import TimeSeriesChart, { type ChartSeries } from './TimeSeriesChart';
import { AutoRefresh, fmtStep, RangePicker, useTicker } from './metricsBits';

type PanelKey = 'cpu' | 'memory' | 'load' | 'network' | 'disk' | 'fs';

interface PanelQuery {
  expr: string;
  name: (m: Labels, t: TFunc) => string;
}

interface Panel {
  key: PanelKey;
  title: MsgKey;
  unit: Unit;
  stacked?: boolean;
  yMax?: number;
  queries: (sel: string, win: string) => PanelQuery[];
}

const LOAD_NAMES: Record<string, MsgKey> = { node_load1: 'metrics.load1', node_load5: 'metrics.load5', node_load15: 'metrics.load15' };
const LOAD_ORDER = ['node_load1', 'node_load5', 'node_load15'];

/** `sel` is the matcher list for the host, e.g. `instance="web-1"`. */
const PANELS: Panel[] = [
  {
    key: 'cpu',
    title: 'metrics.cpu',
    unit: 'percent',
    stacked: true,
    queries: (sel, w) => [
      {
        expr:
          `sum by (mode) (rate(node_cpu_seconds_total{${sel},mode!="idle"}[${w}]))` +
          ` / scalar(count(count by (cpu) (node_cpu_seconds_total{${sel}}))) * 100`,
        name: (m) => m.mode ?? '',
      },
    ],
  },
  {
    key: 'memory',
    title: 'metrics.memory',
    unit: 'percent',
    yMax: 100,
    queries: (sel) => [
      {
        expr: `(1 - node_memory_MemAvailable_bytes{${sel}} / node_memory_MemTotal_bytes{${sel}}) * 100`,
        name: (_m, t) => t('metrics.memoryUsed'),
      },
    ],
  },
  {
    key: 'load',
    title: 'metrics.load',
    unit: 'number',
    queries: (sel) => [
      {
        expr: `{__name__=~"node_load1|node_load5|node_load15",${sel}}`,
        name: (m, t) => (LOAD_NAMES[m.__name__] ? t(LOAD_NAMES[m.__name__]) : m.__name__),
      },
    ],
  },
  {
    key: 'network',
    title: 'metrics.network',
    unit: 'bytesPerSec',
    queries: (sel, w) => [
      { expr: `rate(node_network_receive_bytes_total{${sel},device!="lo"}[${w}])`, name: (m, t) => t('metrics.in', { device: m.device ?? '' }) },
      { expr: `rate(node_network_transmit_bytes_total{${sel},device!="lo"}[${w}])`, name: (m, t) => t('metrics.out', { device: m.device ?? '' }) },
    ],
  },
  {
    key: 'disk',
    title: 'metrics.disk',
    unit: 'bytesPerSec',
    queries: (sel, w) => [
      { expr: `rate(node_disk_read_bytes_total{${sel}}[${w}])`, name: (m, t) => t('metrics.read', { device: m.device ?? '' }) },
      { expr: `rate(node_disk_written_bytes_total{${sel}}[${w}])`, name: (m, t) => t('metrics.write', { device: m.device ?? '' }) },
    ],
  },
  {
    key: 'fs',
    title: 'metrics.fs',
    unit: 'percent',
    yMax: 100,
    queries: (sel) => [
      {
        expr: `(1 - node_filesystem_avail_bytes{${sel}} / (node_filesystem_size_bytes{${sel}} > 0)) * 100`,
        name: (m) => m.mountpoint ?? m.device ?? '',
      },
    ],
  },
];

interface PanelData {
  series: ChartSeries[];
  error?: string;
}

interface Window {
  start: number;
  end: number;
  step: number;
}

/** CPU modes from the bottom of the stack up: the ones that matter most first. */
const CPU_ORDER = ['user', 'system', 'iowait', 'nice', 'irq', 'softirq', 'steal'];

function sortSeries(key: PanelKey, s: ChartSeries[], order: string[]): ChartSeries[] {
  if (key === 'load') return s; // kept in 1 / 5 / 15 order
  if (key === 'cpu') {
    const rank = (n: string) => (CPU_ORDER.includes(n) ? CPU_ORDER.indexOf(n) : CPU_ORDER.length);
    return [...s].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
  }
  return s.map((x, i) => ({ x, i, k: order[i] })).sort((a, b) => a.k.localeCompare(b.k) || a.i - b.i).map((e) => e.x);
}

export default function HostMetricsCard({ host }: { host: Host }) {
  const t = useT();
  const [range, setRange] = useState<TimeRange>(DEFAULT_RANGE);
  const [auto, setAuto] = useState(true);
  const [manual, setManual] = useState(0);
  const tick = useTicker(auto && range.kind === 'last', 15000);
  const [data, setData] = useState<Partial<Record<PanelKey, PanelData>>>({});
  const [win, setWin] = useState<Window | null>(null);
  const [loading, setLoading] = useState(true);
  const [updated, setUpdated] = useState<Date | null>(null);
  const ctl = useRef<AbortController | null>(null);
  const sel = useMemo(() => `instance=${promString(host.hostname)}`, [host.hostname]);

  const load = useCallback(async () => {
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    const [from, to] = resolveRange(range);
    const step = stepFor(from, to);
    const start = alignStart(from, step);
    const end = to;
    const w = rateWindow(step);
    setLoading(true);
    const results = await Promise.all(
      PANELS.map(async (p): Promise<[PanelKey, PanelData | null]> => {
        const qs = p.queries(sel, w);
        try {
          const answers = await Promise.all(
            qs.map((q) => promGet<RangeData>('/query_range', { query: q.expr, start, end, step }, c.signal)),
          );
          const series: ChartSeries[] = [];
          const keys: string[] = [];
          answers.forEach((a, qi) => {
            const rows = p.key === 'load'
              ? [...a.result].sort((x, y) => LOAD_ORDER.indexOf(x.metric.__name__) - LOAD_ORDER.indexOf(y.metric.__name__))
              : a.result;
            for (const r of rows) {
              series.push({ name: qs[qi].name(r.metric, t), points: toPoints(r.values, step) });
              // network / disk: a device's in and out (read and write) side by side
              keys.push(`${r.metric.mountpoint ?? r.metric.device ?? r.metric.mode ?? ''}\u0000${qi}`);
            }
          });
          return [p.key, { series: sortSeries(p.key, series, keys) }];
        } catch (e) {
          if (isAbort(e)) return [p.key, null];
          return [p.key, { series: [], error: e instanceof Error ? e.message : String(e) }];
        }
      }),
    );
    if (c.signal.aborted) return;
    setData((old) => {
      const next = { ...old };
      for (const [k, d] of results) {
        if (!d) continue;
        // a failed refresh keeps the lines already drawn and says what failed
        next[k] = d.error && old[k]?.series.length ? { series: old[k]!.series, error: d.error } : d;
      }
      return next;
    });
    setWin({ start, end, step });
    setLoading(false);
    setUpdated(new Date());
  }, [range, sel, t]);

  useEffect(() => {
    void load();
  }, [load, tick, manual]);
  useEffect(() => () => ctl.current?.abort(), []);

  const [from, to] = resolveRange(range);
  const shown = win ?? { start: from, end: to, step: stepFor(from, to) };

  return (
    <Card
      title={t('metrics.title')}
      data-testid="metrics-card"
      extra={
        <Space wrap size={12}>
          <RangePicker value={range} onChange={setRange} />
          <AutoRefresh on={auto} onChange={setAuto} disabled={range.kind !== 'last'} />
          <Tooltip title={t('common.refresh')}>
            <Button icon={<ReloadOutlined />} onClick={() => setManual((n) => n + 1)} loading={loading && !!updated} data-testid="metrics-refresh" />
          </Tooltip>
        </Space>
      }
    >
      <Typography.Paragraph type="secondary" style={{ fontSize: 12, marginTop: -8 }}>
        {t('metrics.step', { step: fmtStep(t, shown.step) })}
        {updated ? ` · ${t('metrics.updated', { time: updated.toLocaleTimeString() })}` : ''}
        {' · '}
        {t('metrics.zoomHint')}
      </Typography.Paragraph>
      <Row gutter={[24, 20]}>
        {PANELS.map((p) => {
          const d = data[p.key];
          return (
            <Col xs={24} xl={12} key={p.key}>
              <div className="omp-chart-title">{t(p.title)}</div>
              {d?.error && (
                <Alert type="error" showIcon style={{ marginBottom: 8 }} title={t('metrics.queryFailed', { msg: d.error })} data-testid={`chart-${p.key}-error`} />
              )}
              <TimeSeriesChart
                testid={`chart-${p.key}`}
                series={d?.series ?? []}
                unit={p.unit}
                stacked={p.stacked}
                yMax={p.yMax}
                start={shown.start}
                end={shown.end}
                height={230}
                loading={!d}
                empty={t('metrics.noData')}
              />
            </Col>
          );
        })}
      </Row>
    </Card>
  );
}
