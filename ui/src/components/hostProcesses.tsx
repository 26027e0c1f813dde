// The "Processes" tab of the host detail page: the host's top processes, asked on demand from
// GET /hosts/{id}/processes?sort=cpu|memory&limit=N (the agent reads them when asked), with a
// sort switch, the number of rows, refresh and an optional 5 s auto refresh. An offline host
// (409) and a server without the route (404) are said plainly, not shown as an empty table.
import { useCallback, useEffect, useRef, useState } from 'react';
import { Alert, Button, Card, Empty, Progress, Segmented, Select, Space, Switch, Table, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { ReloadOutlined } from '@ant-design/icons';
import { api, ApiError, type Host, type ProcessInfo, type ProcessList } from '../api';
import { useT, type MsgKey, type TFunc } from '../i18n';
import { fmtTime } from '../session';
import { fmtAgo, fmtBytes } from './hostBits';

type SortKey = 'cpu' | 'memory';
const LIMITS = [10, 20, 50, 100];
const AUTO_MS = 5000;

/** Linux process states (the first letter of /proc/PID/stat's field 3). */
const STATES: Record<string, { key: MsgKey; color?: string }> = {
  R: { key: 'procs.state.R', color: 'green' },
  S: { key: 'procs.state.S' },
  D: { key: 'procs.state.D', color: 'orange' },
  Z: { key: 'procs.state.Z', color: 'red' },
  T: { key: 'procs.state.T', color: 'gold' },
  t: { key: 'procs.state.T', color: 'gold' },
  I: { key: 'procs.state.I' },
  X: { key: 'procs.state.X', color: 'red' },
};

function StateTag({ t, state }: { t: TFunc; state: string }) {
  const s = STATES[(state ?? '').slice(0, 1)];
  const text = s ? t(s.key) : state || '—';
  return (
    <Tooltip title={state}>
      <Tag color={s?.color} style={{ marginInlineEnd: 0 }}>
        {text}
      </Tag>
    </Tooltip>
  );
}

const pct = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(v >= 100 ? 0 : 1)}%`);

export default function HostProcesses({ host }: { host: Host }) {
  const t = useT();
  const [sort, setSort] = useState<SortKey>('cpu');
  const [limit, setLimit] = useState(20);
  const [data, setData] = useState<ProcessList | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  const [auto, setAuto] = useState(false);
  const [now, setNow] = useState(() => Date.now());
  const seq = useRef(0);

  const load = useCallback(
    (quiet = false) => {
      const my = ++seq.current;
      if (!quiet) setLoading(true);
      api
        .get<ProcessList>(`/hosts/${encodeURIComponent(String(host.id))}/processes`, { sort, limit }, { silent: true })
        .then((d) => {
          if (my !== seq.current) return;
          setData(d);
          setError(null);
          setNow(Date.now());
        })
        .catch((e) => {
          if (my !== seq.current) return;
          setError(e instanceof ApiError ? e : new ApiError(0, 'error', String(e)));
        })
        .finally(() => {
          if (my === seq.current) setLoading(false);
        });
    },
    [host.id, sort, limit],
  );
  useEffect(() => load(), [load]);
  useEffect(() => {
    if (!auto) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, AUTO_MS);
    return () => window.clearInterval(id);
  }, [auto, load]);

  const cpuScale = Math.max(1, host.cpus || 1) * 100;
  const columns: ColumnsType<ProcessInfo> = [
    { title: t('procs.pid'), dataIndex: 'pid', width: 90, render: (v: number) => <span className="omp-mono" style={{ whiteSpace: 'nowrap', wordBreak: 'normal' }}>{v}</span> },
    {
      title: t('procs.command'),
      key: 'command',
      render: (_: unknown, p) => (
        <div style={{ minWidth: 200, maxWidth: 560 }}>
          <Typography.Text strong data-testid="process-name">
            {p.name}
          </Typography.Text>
          {p.cmdline && p.cmdline !== p.name ? (
            <Tooltip title={<span className="omp-mono">{p.cmdline}</span>} styles={{ root: { maxWidth: 640 } }}>
              <Typography.Text type="secondary" className="omp-mono" ellipsis style={{ display: 'block', fontSize: 12, maxWidth: 540 }}>
                {p.cmdline}
              </Typography.Text>
            </Tooltip>
          ) : null}
        </div>
      ),
    },
    { title: t('procs.user'), dataIndex: 'user', width: 110, render: (v: string) => v || '—' },
    { title: t('procs.state'), dataIndex: 'state', width: 110, render: (v: string) => <StateTag t={t} state={v} /> },
    {
      title: <span style={{ fontWeight: sort === 'cpu' ? 700 : undefined }}>{t('procs.cpu')}</span>,
      dataIndex: 'cpu_percent',
      width: 150,
      align: 'right',
      render: (v: number) => (
        <Tooltip title={t('procs.cpuHelp', { n: host.cpus || 1 })}>
          <div style={{ display: 'flex', alignItems: 'center', gap: 8, justifyContent: 'flex-end' }}>
            <Progress percent={Math.min(100, (v / cpuScale) * 100)} size="small" showInfo={false} style={{ width: 56, margin: 0 }} />
            <span className="omp-mono" style={{ minWidth: 48, textAlign: 'right' }} data-testid="process-cpu">
              {pct(v)}
            </span>
          </div>
        </Tooltip>
      ),
    },
    {
      title: <span style={{ fontWeight: sort === 'memory' ? 700 : undefined }}>{t('procs.memory')}</span>,
      key: 'memory',
      width: 170,
      align: 'right',
      render: (_: unknown, p) => (
        <span style={{ whiteSpace: 'nowrap' }} data-testid="process-rss">
          {fmtBytes(p.rss_bytes)}
          <Typography.Text type="secondary" style={{ fontSize: 12, marginLeft: 6 }}>
            {pct(p.mem_percent)}
          </Typography.Text>
        </span>
      ),
    },
    { title: <span style={{ whiteSpace: 'nowrap' }}>{t('procs.threads')}</span>, dataIndex: 'threads', width: 90, align: 'right' },
    {
      title: t('procs.started'),
      dataIndex: 'started_at',
      width: 130,
      render: (v: string | null | undefined) =>
        v ? (
          <Tooltip title={fmtTime(v)}>
            <span style={{ whiteSpace: 'nowrap' }}>{fmtAgo(t, v, now)}</span>
          </Tooltip>
        ) : (
          '—'
        ),
    },
  ];

  const offline = error?.status === 409;
  const absent = error?.status === 404 || error?.status === 405;

  return (
    <Card
      data-testid="host-processes"
      title={t('procs.title')}
      extra={
        <Space wrap>
          <Segmented<SortKey>
            value={sort}
            onChange={setSort}
            options={[
              { value: 'cpu', label: <span data-testid="procs-sort-cpu">{t('procs.sortCpu')}</span> },
              { value: 'memory', label: <span data-testid="procs-sort-memory">{t('procs.sortMemory')}</span> },
            ]}
          />
          <Select
            value={limit}
            onChange={setLimit}
            style={{ width: 110 }}
            options={LIMITS.map((n) => ({ value: n, label: t('procs.top', { n }) }))}
            data-testid="procs-limit"
          />
          <Space size={6}>
            <Switch size="small" checked={auto} onChange={setAuto} data-testid="procs-auto" />
            <span>{t('procs.auto')}</span>
          </Space>
          <Button icon={<ReloadOutlined />} loading={loading} onClick={() => load()} data-testid="procs-refresh">
            {t('common.refresh')}
          </Button>
        </Space>
      }
    >
      {offline ? (
        <Alert type="warning" showIcon title={t('procs.offline')} description={error?.message} data-testid="procs-offline" />
      ) : absent ? (
        <Alert type="info" showIcon title={t('procs.unavailable')} data-testid="procs-unavailable" />
      ) : (
        <>
          {error && (
            <Alert type="error" showIcon style={{ marginBottom: 12 }} title={t('procs.failed')} description={error.message} data-testid="procs-error" />
          )}
          {data && (
            <div style={{ marginBottom: 8 }}>
              <Typography.Text type="secondary" data-testid="procs-info">
                {t('procs.info', { time: fmtTime(data.collected_at), total: data.total, n: data.items.length })}
              </Typography.Text>
            </div>
          )}
          <Table<ProcessInfo>
            rowKey="pid"
            size="small"
            loading={loading && !data}
            columns={columns}
            dataSource={data?.items ?? []}
            pagination={false}
            scroll={{ x: 1000 }}
            onRow={(p) => ({ 'data-testid': 'process-row', 'data-pid': String(p.pid) }) as React.HTMLAttributes<HTMLElement>}
            data-testid="procs-table"
            locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('procs.empty')} /> }}
          />
        </>
      )}
    </Card>
  );
}
