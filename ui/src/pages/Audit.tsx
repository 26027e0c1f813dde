// Audit log: filterable, paged table of audit records (newest first), CSV/JSON export with
// the same filters, and verification of the hash chain; the "Terminal sessions" tab lists
// the recorded web terminals (GET /terminals) with their replay (?tab=terminals&replay=N).
import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import { Alert, Button, Card, DatePicker, Input, Select, Space, Table, Tabs, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { DownloadOutlined, PlayCircleOutlined, ReloadOutlined, SafetyCertificateOutlined } from '@ant-design/icons';
import dayjs, { type Dayjs } from 'dayjs';
import { Link, useSearchParams } from 'react-router-dom';
import { api, API_BASE, queryString, type AuditRecord, type Page, type TerminalRecord, type VerifyResult } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';
import { NoPermission } from '../components/common';
import { endReason, terminalIdOfAudit } from '../components/terminalBits';
import { fmtDuration } from '../components/hostBits';

// the player carries xterm.js: loaded only when a replay is opened
const TerminalReplay = lazy(() => import('../components/TerminalReplay'));

interface Filters {
  q: string;
  actor: string;
  action: string;
  result: '' | 'success' | 'failure';
  range: [Dayjs | null, Dayjs | null] | null;
}

const EMPTY: Filters = { q: '', actor: '', action: '', result: '', range: null };

function filterQuery(f: Filters): Record<string, string | undefined> {
  return {
    q: f.q.trim() || undefined,
    actor: f.actor.trim() || undefined,
    action: f.action.trim() || undefined,
    result: f.result || undefined,
    since: f.range?.[0] ? f.range[0].toISOString() : undefined,
    until: f.range?.[1] ? f.range[1].toISOString() : undefined,
  };
}

type ReplayOpener = (id: number, rec?: TerminalRecord) => void;

export default function AuditPage() {
  const t = useT();
  const can = useCan();
  const [params, setParams] = useSearchParams();
  const [replayRec, setReplayRec] = useState<TerminalRecord | null>(null);
  if (!can('audit:read')) return <NoPermission />;
  const tab = params.get('tab') === 'terminals' ? 'terminals' : 'log';
  const replay = params.get('replay');
  const setTab = (k: string) =>
    setParams((p) => {
      const n = new URLSearchParams(p);
      if (k === 'terminals') n.set('tab', 'terminals');
      else n.delete('tab');
      n.delete('replay');
      return n;
    });
  const openReplay: ReplayOpener = (id, rec) => {
    setReplayRec(rec ?? null);
    setParams((p) => {
      const n = new URLSearchParams(p);
      n.set('replay', String(id));
      return n;
    });
  };
  const closeReplay = () => {
    setReplayRec(null);
    setParams((p) => {
      const n = new URLSearchParams(p);
      n.delete('replay');
      return n;
    });
  };
  const rec = replayRec && String(replayRec.id) === replay ? replayRec : null;
  return (
    <div data-testid="audit-page">
      <Typography.Title level={3} className="omp-page-title">
        {t('audit.title')}
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={setTab}
        items={[
          { key: 'log', label: <span data-testid="audit-log-tab">{t('audit.tabLog')}</span>, children: <AuditTable onReplay={openReplay} /> },
          {
            key: 'terminals',
            label: <span data-testid="terminal-sessions-tab">{t('termlog.tab')}</span>,
            children: <TerminalSessions onReplay={openReplay} />,
          },
        ]}
      />
      {replay && /^\d+$/.test(replay) && (
        <Suspense fallback={null}>
          <TerminalReplay
            key={replay}
            id={replay}
            user={rec?.user}
            hostname={rec?.hostname}
            startedAt={rec?.started_at}
            onClose={closeReplay}
          />
        </Suspense>
      )}
    </div>
  );
}

// ---------------------------------------------------------------- terminal sessions

function TerminalSessions({ onReplay }: { onReplay: ReplayOpener }) {
  const t = useT();
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(50);
  const [data, setData] = useState<Page<TerminalRecord> | null>(null);
  const [loading, setLoading] = useState(false);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<Page<TerminalRecord>>('/terminals', { page, page_size: pageSize })
      .then(setData)
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, [page, pageSize]);
  useEffect(load, [load]);

  const columns: ColumnsType<TerminalRecord> = [
    { title: t('termlog.id'), dataIndex: 'id', width: 70 },
    { title: t('termlog.user'), dataIndex: 'user', width: 130, render: (v: string) => v || '—' },
    {
      title: t('termlog.host'),
      key: 'host',
      render: (_: unknown, r) => <Link to={`/hosts/${encodeURIComponent(r.host_id)}`}>{r.hostname || String(r.host_id)}</Link>,
    },
    { title: t('termlog.started'), dataIndex: 'started_at', width: 170, render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    {
      title: t('termlog.ended'),
      dataIndex: 'ended_at',
      width: 170,
      render: (v: string | null | undefined) =>
        v ? <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> : <Tag color="processing">{t('termlog.running')}</Tag>,
    },
    {
      title: t('termlog.duration'),
      key: 'duration',
      width: 110,
      render: (_: unknown, r) =>
        r.ended_at ? fmtDuration(t, Math.max(0, dayjs(r.ended_at).diff(dayjs(r.started_at), 'second'))) : '—',
    },
    {
      title: t('termlog.exitCode'),
      dataIndex: 'exit_code',
      width: 90,
      render: (v: number | null | undefined) => (v === null || v === undefined ? '—' : <Tag color={v === 0 ? 'green' : 'red'}>{v}</Tag>),
    },
    { title: t('termlog.reason'), dataIndex: 'end_reason', render: (v: string) => endReason(t, v) },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 170,
      render: (_: unknown, r) => (
        <Space size={0}>
          <Button type="link" size="small" icon={<PlayCircleOutlined />} onClick={() => onReplay(r.id, r)} data-testid={`terminal-replay-${r.id}`}>
            {t('termlog.replay')}
          </Button>
          <Tooltip title={t('replay.download')}>
            <Button
              type="link"
              size="small"
              icon={<DownloadOutlined />}
              href={`${API_BASE}/terminals/${encodeURIComponent(r.id)}/recording`}
              download={`omp-terminal-${r.id}.cast`}
              data-testid={`terminal-download-${r.id}`}
            />
          </Tooltip>
        </Space>
      ),
    },
  ];

  return (
    <Card>
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', gap: 8, marginBottom: 12 }}>
        <Typography.Text type="secondary">{t('termlog.intro')}</Typography.Text>
        <Tooltip title={t('common.refresh')}>
          <Button icon={<ReloadOutlined />} onClick={load} data-testid="terminal-sessions-refresh" />
        </Tooltip>
      </div>
      <Table<TerminalRecord>
        rowKey="id"
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={data?.items ?? []}
        data-testid="terminal-sessions-table"
        onRow={(r) => ({ 'data-testid': `terminal-session-row-${r.id}` }) as React.HTMLAttributes<HTMLElement>}
        locale={{ emptyText: t('termlog.empty') }}
        pagination={{
          current: page,
          pageSize,
          total: data?.total ?? 0,
          showSizeChanger: true,
          pageSizeOptions: [20, 50, 100, 200],
          showTotal: (n) => t('common.total', { n }),
          onChange: (p, s) => {
            setPage(p);
            setPageSize(s);
          },
        }}
      />
    </Card>
  );
}

// ---------------------------------------------------------------- audit records

function AuditTable({ onReplay }: { onReplay: ReplayOpener }) {
  const t = useT();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(50);
  const [data, setData] = useState<Page<AuditRecord> | null>(null);
  const [loading, setLoading] = useState(false);
  const [verify, setVerify] = useState<VerifyResult | null>(null);
  const [verifying, setVerifying] = useState(false);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<Page<AuditRecord>>('/audit', { ...filterQuery(applied), page, page_size: pageSize })
      .then(setData)
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, [applied, page, pageSize]);
  useEffect(load, [load]);

  const apply = (patch: Partial<Filters> = {}) => {
    const next = { ...draft, ...patch };
    setDraft(next);
    setApplied(next);
    setPage(1);
  };

  const runVerify = async () => {
    setVerifying(true);
    try {
      setVerify(await api.get<VerifyResult>('/audit/verify'));
    } catch {
      // reported
    } finally {
      setVerifying(false);
    }
  };

  const exportUrl = useMemo(
    () => (format: 'csv' | 'json') => `${API_BASE}/audit/export${queryString({ format, ...filterQuery(applied) })}`,
    [applied],
  );

  const hasDetail = (data?.items ?? []).some((r) => r.detail !== null && r.detail !== undefined && r.detail !== '');

  const columns: ColumnsType<AuditRecord> = [
    { title: t('audit.time'), dataIndex: 'time', width: 170, render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    { title: t('audit.actor'), dataIndex: 'actor', width: 130, render: (v: string) => v || '—' },
    { title: t('audit.action'), dataIndex: 'action', render: (v: string) => <span className="omp-mono">{v}</span> },
    {
      title: t('audit.target'),
      dataIndex: 'target',
      render: (v: string, r) => {
        const term = r.action === 'terminals.open' && r.result === 'success' ? terminalIdOfAudit(v, r.detail) : null;
        return (
          <Space size={4} wrap>
            {v ? <Typography.Text>{v}</Typography.Text> : '—'}
            {term !== null && (
              <Button
                type="link"
                size="small"
                icon={<PlayCircleOutlined />}
                onClick={() => onReplay(term)}
                data-testid={`audit-replay-${r.seq}`}
                style={{ paddingInline: 4 }}
              >
                {t('audit.replay')}
              </Button>
            )}
          </Space>
        );
      },
    },
    { title: t('audit.source'), dataIndex: 'source', width: 140, render: (v: string) => v || '—' },
    {
      title: t('audit.result'),
      dataIndex: 'result',
      width: 100,
      render: (v: AuditRecord['result']) =>
        v === 'success' ? <Tag color="green">{t('audit.success')}</Tag> : <Tag color="red">{t('audit.failure')}</Tag>,
    },
    { title: t('audit.status'), dataIndex: 'status', width: 80, render: (v: number) => (v ? v : '—') },
  ];

  return (
    <Card>
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 8, marginBottom: 12 }}>
        <Input.Search
          allowClear
          placeholder={t('audit.searchPlaceholder')}
          style={{ width: 210 }}
          value={draft.q}
          onChange={(e) => setDraft({ ...draft, q: e.target.value })}
          onSearch={(v) => apply({ q: v })}
          data-testid="audit-search"
        />
        <Input
          allowClear
          placeholder={t('audit.actorPlaceholder')}
          style={{ width: 130 }}
          value={draft.actor}
          onChange={(e) => setDraft({ ...draft, actor: e.target.value })}
          onPressEnter={() => apply()}
          data-testid="audit-actor"
        />
        <Input
          allowClear
          placeholder={t('audit.actionPlaceholder')}
          style={{ width: 180 }}
          value={draft.action}
          onChange={(e) => setDraft({ ...draft, action: e.target.value })}
          onPressEnter={() => apply()}
          data-testid="audit-action"
        />
        <Select
          allowClear
          placeholder={t('audit.resultPlaceholder')}
          style={{ width: 110 }}
          value={draft.result || undefined}
          onChange={(v) => apply({ result: (v ?? '') as Filters['result'] })}
          options={[
            { value: 'success', label: t('audit.success') },
            { value: 'failure', label: t('audit.failure') },
          ]}
          data-testid="audit-result"
        />
        <DatePicker.RangePicker
          showTime={{ format: 'HH:mm' }}
          format="YYYY-MM-DD HH:mm"
          style={{ width: 320 }}
          value={draft.range}
          onChange={(v) => apply({ range: v ? [v[0], v[1]] : null })}
          data-testid="audit-range"
        />
        <Button
          data-testid="audit-reset"
          onClick={() => {
            setDraft(EMPTY);
            setApplied(EMPTY);
            setPage(1);
          }}
        >
          {t('audit.reset')}
        </Button>
      </div>
      <div style={{ display: 'flex', justifyContent: 'space-between', flexWrap: 'wrap', gap: 8, marginBottom: 12 }}>
        <Space wrap>
          <Button icon={<DownloadOutlined />} href={exportUrl('csv')} download data-testid="audit-export-csv">
            {t('audit.exportCsv')}
          </Button>
          <Button icon={<DownloadOutlined />} href={exportUrl('json')} download data-testid="audit-export-json">
            {t('audit.exportJson')}
          </Button>
        </Space>
        <Space wrap>
          <Tooltip title={t('common.refresh')}>
            <Button icon={<ReloadOutlined />} onClick={load} data-testid="audit-refresh" />
          </Tooltip>
          <Button icon={<SafetyCertificateOutlined />} loading={verifying} onClick={runVerify} data-testid="audit-verify">
            {t('audit.verify')}
          </Button>
        </Space>
      </div>
      {verify && (
        <Alert
          closable={{ onClose: () => setVerify(null) }}
          showIcon
          type={verify.ok ? 'success' : 'error'}
          style={{ marginBottom: 12 }}
          data-testid="audit-verify-result"
          title={
            verify.ok
              ? t('audit.verifyOk', { n: verify.checked })
              : t('audit.verifyBad', { seq: verify.first_bad_seq ?? '?' })
          }
          description={verify.message || undefined}
        />
      )}
      <Table<AuditRecord>
        rowKey="seq"
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={data?.items ?? []}
        data-testid="audit-table"
        onRow={(r) => ({ 'data-testid': `audit-row-${r.seq}` }) as React.HTMLAttributes<HTMLElement>}
        expandable={
          hasDetail
            ? {
                rowExpandable: (r) => r.detail !== null && r.detail !== undefined && r.detail !== '',
          expandedRowRender: (r) => (
            <pre className="omp-mono" style={{ margin: 0, fontSize: 12, whiteSpace: 'pre-wrap' }}>
              <Typography.Text type="secondary">#{r.seq} </Typography.Text>
              {typeof r.detail === 'string' ? r.detail : JSON.stringify(r.detail, null, 2)}
            </pre>
          ),
              }
            : undefined
        }
        pagination={{
          current: page,
          pageSize,
          total: data?.total ?? 0,
          showSizeChanger: true,
          pageSizeOptions: [20, 50, 100, 200],
          showTotal: (n) => t('common.total', { n }),
          onChange: (p, s) => {
            setPage(p);
            setPageSize(s);
          },
        }}
      />
    </Card>
  );
}
