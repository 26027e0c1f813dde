// The metrics explorer (route /monitoring, metrics:read): a PromQL box that completes metric
// names, functions, label names and label values (components/promqlEditor.tsx), a time range,
// and the result as a graph (query_range) or a table (instant query at the end of the range).
// The query and range live in the address (?q=…&range=…) so a view can be shared.
import { useCallback, useEffect, useRef, useState, type CSSProperties, type HTMLAttributes } from 'react';
import { Alert, Button, Card, Empty, Select, Space, Table, Tabs, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { CaretRightOutlined } from '@ant-design/icons';
import { useSearchParams } from 'react-router-dom';
import { useT, type TFunc } from '../i18n';
import { useCan } from '../session';
import { NoPermission } from '../components/common';
import PromqlEditor from '../components/promqlEditor';
import TimeSeriesChart, { type ChartSeries } from '../components/TimeSeriesChart';
import { AutoRefresh, fmtStep, RangePicker, rangeFromParam, rangeToParam, useTicker } from '../components/metricsBits';
import {
  alignStart,
  DEFAULT_RANGE,
  fmtRaw,
  isAbort,
  PromError,
  promGet,
  resolveRange,
  seriesName,
  stepFor,
  toPoints,
  type InstantData,
  type Labels,
  type PromSample,
  type RangeData,
  type TimeRange,
  type Unit,
} from '../prom';

const MAX_GRAPH_SERIES = 100;

const UNITS: Unit[] = ['number', 'percent', 'bytes', 'bytesPerSec'];

/** The y-axis unit a query probably has: bytes (per second under rate and friends), else plain numbers. */
function guessUnit(q: string): Unit {
  if (!/_bytes/.test(q) || /[/*%^]|\bcount/.test(q)) return 'number';
  return /\b(i?rate|i?delta|deriv)\s*\(/.test(q) ? 'bytesPerSec' : 'bytes';
}

const EXAMPLES = [
  'node_load1',
  'rate(node_network_receive_bytes_total{device!="lo"}[5m])',
  '100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)',
];

interface GraphResult {
  series: ChartSeries[];
  total: number;
  start: number;
  end: number;
  step: number;
}

interface TableRow {
  key: number;
  metric: Labels | null;
  value?: PromSample;
  values?: PromSample[];
  kind: InstantData['resultType'];
}

interface TableResult {
  rows: TableRow[];
  type: InstantData['resultType'];
  time: number;
}

/** The two answers of a run: query_range for the graph, the instant query for the table. */
interface Outcome {
  query: string;
  graph: GraphResult | PromError;
  table: TableResult | PromError;
  ms: number;
}

const failedOf = (x: unknown): PromError | undefined => (x instanceof PromError ? x : undefined);

function ErrorAlert({ t, error, style }: { t: TFunc; error: PromError; style?: CSSProperties }) {
  return (
    <Alert
      type="error"
      showIcon
      style={style}
      data-testid="promql-error"
      title={t('explorer.error')}
      description={
        <div>
          <div className="omp-mono" style={{ whiteSpace: 'pre-wrap' }} data-testid="promql-error-message">
            {error.message}
          </div>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {error.errorType}
            {error.status ? ` · HTTP ${error.status}` : ''}
          </Typography.Text>
        </div>
      }
    />
  );
}

function LabelsText({ metric }: { metric: Labels }) {
  const name = metric.__name__;
  const keys = Object.keys(metric).filter((k) => k !== '__name__').sort();
  return (
    <span className="omp-mono">
      {name && <strong>{name}</strong>}
      {'{'}
      {keys.map((k, i) => (
        <span key={k}>
          <span style={{ color: '#c41d7f' }}>{k}</span>=<span style={{ color: '#0958d9' }}>{JSON.stringify(metric[k])}</span>
          {i < keys.length - 1 ? ', ' : ''}
        </span>
      ))}
      {'}'}
    </span>
  );
}

export default function ExplorerPage() {
  const t = useT();
  const can = useCan();
  if (!can('metrics:read')) return <NoPermission />;
  return <Explorer t={t} />;
}

function Explorer({ t }: { t: TFunc }) {
  const [params, setParams] = useSearchParams();
  const [text, setText] = useState(() => params.get('q') ?? '');
  const [range, setRange] = useState<TimeRange>(() => rangeFromParam(params.get('range')) ?? DEFAULT_RANGE);
  const [tab, setTab] = useState<'graph' | 'table'>(() => (params.get('tab') === 'table' ? 'table' : 'graph'));
  const [auto, setAuto] = useState(false);
  const [unitChoice, setUnitChoice] = useState<Unit | 'auto'>('auto');
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [running, setRunning] = useState(false);
  /** Bumped to close the completion list (a run from the button or an example). */
  const [closeList, setCloseList] = useState(0);
  const ctl = useRef<AbortController | null>(null);
  const lastRun = useRef<{ query: string; range: TimeRange } | null>(null);

  const run = useCallback(
    async (query: string, r: TimeRange, quiet = false) => {
      const q = query.trim();
      if (!q) return;
      ctl.current?.abort();
      const c = new AbortController();
      ctl.current = c;
      lastRun.current = { query: q, range: r };
      if (!quiet) setRunning(true);
      const [from, to] = resolveRange(r);
      const step = stepFor(from, to);
      const start = alignStart(from, step);
      const t0 = performance.now();
      const asError = (e: unknown) => {
        if (isAbort(e)) throw e;
        return e instanceof PromError ? e : new PromError(0, 'error', String(e));
      };
      try {
        // each answer on its own: a range selector (x[5m]) has a table but no graph
        const [graph, table] = await Promise.all([
          promGet<RangeData>('/query_range', { query: q, start, end: to, step }, c.signal).then((rng): GraphResult => {
            const all = rng.result ?? [];
            const series = all.slice(0, MAX_GRAPH_SERIES).map((s) => ({ name: seriesName(s.metric), points: toPoints(s.values, step) }));
            return { series, total: all.length, start, end: to, step };
          }, asError),
          promGet<InstantData>('/query', { query: q, time: to }, c.signal).then((inst): TableResult => {
            let rows: TableRow[];
            if (inst.resultType === 'vector') rows = inst.result.map((s, i) => ({ key: i, metric: s.metric, value: s.value, kind: 'vector' }));
            else if (inst.resultType === 'matrix') rows = inst.result.map((s, i) => ({ key: i, metric: s.metric, values: s.values, kind: 'matrix' }));
            else rows = [{ key: 0, metric: null, value: inst.result, kind: inst.resultType }];
            return { rows, type: inst.resultType, time: to };
          }, asError),
        ]);
        setOutcome({ query: q, graph, table, ms: Math.round(performance.now() - t0) });
      } catch {
        // aborted by a newer run (every other failure is an answer above)
      } finally {
        if (ctl.current === c) setRunning(false);
      }
    },
    [],
  );

  const submit = (query = text) => {
    setCloseList((n) => n + 1);
    const next = new URLSearchParams(params);
    next.set('q', query.trim());
    next.set('range', rangeToParam(range));
    if (tab === 'table') next.set('tab', 'table');
    else next.delete('tab');
    setParams(next, { replace: true });
    void run(query, range);
  };

  // run what the address names on arrival
  useEffect(() => {
    const q = params.get('q');
    if (q) void run(q, range);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // a new range re-runs the last query; auto refresh re-runs it every 15 s
  const tick = useTicker(auto && range.kind === 'last' && !!outcome, 15000);
  useEffect(() => {
    const last = lastRun.current;
    if (!last) return;
    const sameRange = rangeToParam(last.range) === rangeToParam(range);
    if (!sameRange) {
      const next = new URLSearchParams(params);
      next.set('range', rangeToParam(range));
      setParams(next, { replace: true });
    }
    if (!sameRange || tick) void run(last.query, range, sameRange);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [range, tick]);

  useEffect(() => () => ctl.current?.abort(), []);

  const columns: ColumnsType<TableRow> = [
    {
      title: t('explorer.series'),
      key: 'series',
      render: (_: unknown, r) =>
        r.metric ? <LabelsText metric={r.metric} /> : <Tag>{r.kind === 'scalar' ? t('explorer.scalar') : t('explorer.string')}</Tag>,
    },
    {
      title: t('explorer.value'),
      key: 'value',
      width: 260,
      align: 'right',
      render: (_: unknown, r) =>
        r.values ? (
          <div className="omp-mono" style={{ whiteSpace: 'pre', textAlign: 'right' }}>
            {r.values.map(([ts, v]) => `${fmtRaw(v)} @${ts}`).join('\n')}
          </div>
        ) : (
          <span className="omp-mono">{r.kind === 'string' ? r.value?.[1] : fmtRaw(r.value?.[1] ?? '')}</span>
        ),
    },
  ];

  const graphError = failedOf(outcome?.graph);
  const tableError = failedOf(outcome?.table);
  const graph = outcome && !graphError ? (outcome.graph as GraphResult) : undefined;
  const table = outcome && !tableError ? (outcome.table as TableResult) : undefined;
  // both failed: the query itself is wrong, said once above the tabs; else in the tab that failed
  const bothFailed = !!graphError && !!tableError;
  const guessed = guessUnit(outcome?.query ?? text);
  const unit = unitChoice === 'auto' ? guessed : unitChoice;
  const [from, to] = resolveRange(range);

  return (
    <div data-testid="explorer">
      <Card>
        <Space.Compact style={{ width: '100%', alignItems: 'flex-start' }}>
          <PromqlEditor value={text} onChange={setText} onRun={submit} placeholder={t('explorer.placeholder')} closeSignal={closeList} />
          <Tooltip title={t('explorer.runTip')}>
            <Button type="primary" icon={<CaretRightOutlined />} loading={running} onClick={() => submit()} data-testid="promql-run">
              {t('explorer.run')}
            </Button>
          </Tooltip>
        </Space.Compact>
        <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', flexWrap: 'wrap', gap: 12, marginTop: 12 }}>
          <Space wrap size={12}>
            <RangePicker value={range} onChange={setRange} />
            <AutoRefresh on={auto} onChange={setAuto} disabled={range.kind !== 'last'} />
            <Space size={6}>
              <Typography.Text style={{ fontSize: 13 }}>{t('explorer.unit')}</Typography.Text>
              <Select
                value={unitChoice}
                style={{ width: 150 }}
                data-testid="promql-unit"
                onChange={(v: Unit | 'auto') => setUnitChoice(v)}
                options={[
                  { value: 'auto', label: t('explorer.unitAuto', { unit: t(`explorer.unit.${guessed}`) }) },
                  ...UNITS.map((u) => ({ value: u, label: t(`explorer.unit.${u}`) })),
                ]}
              />
            </Space>
          </Space>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {t('explorer.hint')}
          </Typography.Text>
        </div>
      </Card>

      {bothFailed && <ErrorAlert t={t} error={tableError} style={{ marginTop: 16 }} />}

      <Card style={{ marginTop: 16 }} styles={{ body: { paddingTop: 4 } }}>
        <Tabs
          activeKey={tab}
          onChange={(k) => setTab(k as 'graph' | 'table')}
          tabBarExtraContent={
            outcome && (tab === 'graph' ? graph : table) ? (
              <Typography.Text type="secondary" style={{ fontSize: 12 }} data-testid="promql-info">
                {t('explorer.resultInfo', {
                  n: tab === 'graph' ? (graph?.total ?? 0) : (table?.rows.filter((r) => r.metric).length ?? 0),
                  ms: outcome.ms,
                })}
                {tab === 'graph' && graph ? ` · ${t('metrics.step', { step: fmtStep(t, graph.step) })}` : ''}
                {tab === 'table' && table ? ` · ${t('explorer.evalAt', { time: new Date(table.time * 1000).toLocaleString() })}` : ''}
              </Typography.Text>
            ) : null
          }
          items={[
            {
              key: 'graph',
              label: <span data-testid="promql-tab-graph">{t('explorer.graph')}</span>,
              children: (
                <>
                  {graph && graph.total > graph.series.length && (
                    <Alert
                      type="warning"
                      showIcon
                      style={{ marginBottom: 8 }}
                      title={t('explorer.tooMany', { shown: graph.series.length, n: graph.total })}
                    />
                  )}
                  {bothFailed ? (
                    <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('explorer.error')} style={{ padding: 48 }} />
                  ) : graphError ? (
                    <ErrorAlert t={t} error={graphError} />
                  ) : outcome ? (
                    <TimeSeriesChart
                      testid="promql-graph"
                      series={graph?.series ?? []}
                      unit={unit}
                      start={graph?.start ?? from}
                      end={graph?.end ?? to}
                      height={420}
                      slider
                      loading={running && !graph}
                      empty={t('explorer.noResult')}
                    />
                  ) : (
                    <Examples t={t} onPick={(q) => { setText(q); submit(q); }} />
                  )}
                </>
              ),
            },
            {
              key: 'table',
              label: <span data-testid="promql-tab-table">{t('explorer.table')}</span>,
              children: bothFailed ? (
                <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('explorer.error')} style={{ padding: 48 }} />
              ) : tableError ? (
                <ErrorAlert t={t} error={tableError} />
              ) : outcome ? (
                <Table<TableRow>
                  data-testid="promql-table"
                  size="small"
                  rowKey="key"
                  columns={columns}
                  dataSource={table?.rows ?? []}
                  pagination={{ pageSize: 50, hideOnSinglePage: true, showSizeChanger: false }}
                  locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('explorer.noResult')} /> }}
                  onRow={(r) => ({ 'data-testid': 'promql-row', 'data-series': r.metric ? seriesName(r.metric) : '' }) as HTMLAttributes<HTMLElement>}
                />
              ) : (
                <Examples t={t} onPick={(q) => { setText(q); submit(q); }} />
              ),
            },
          ]}
        />
      </Card>
    </div>
  );
}

function Examples({ t, onPick }: { t: TFunc; onPick: (q: string) => void }) {
  return (
    <Empty
      image={Empty.PRESENTED_IMAGE_SIMPLE}
      description={
        <div>
          <div style={{ marginBottom: 8 }}>{t('explorer.empty')}</div>
          <Space wrap style={{ justifyContent: 'center' }}>
            <Typography.Text type="secondary">{t('explorer.examples')}</Typography.Text>
            {EXAMPLES.map((q) => (
              <Tag key={q} className="omp-mono" style={{ cursor: 'pointer' }} onClick={() => onPick(q)} data-testid="promql-example">
                {q}
              </Tag>
            ))}
          </Space>
        </div>
      }
    />
  );
}
