// Agent fleet upgrade (issue 5, docs/api-v1.md "Agent fleet upgrade"): the agent binary the
// server offers, an agent's version next to it (behind / newer tags), the "Upgrade agents"
// dialog (scope, canary count, timeout, confirmation, POST /hosts/upgrade) and the runs view
// (GET /hosts/upgrades, one run refreshed every 2 s while it runs).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Col,
  Descriptions,
  Empty,
  Form,
  InputNumber,
  Modal,
  Progress,
  Radio,
  Row,
  Select,
  Space,
  Table,
  Tag,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { ArrowRightOutlined, CloudUploadOutlined, ReloadOutlined } from '@ant-design/icons';
import dayjs from 'dayjs';
import { Link, useSearchParams } from 'react-router-dom';
import {
  api,
  ApiError,
  compareVersions,
  type AgentBinary,
  type Host,
  type HostUpgrade,
  type HostUpgradeState,
  type Page,
  type UpgradeRun,
  type UpgradeRunState,
} from '../api';
import { useT, type MsgKey, type TFunc } from '../i18n';
import { fmtBytes, useHostGroups } from './hostBits';

/** Polling period of a running run, per the issue: every 2 s while it runs. */
const RUN_POLL_MS = 2000;

/** The binary the server offers, fetched once per mount; `error` when it is unusable. */
export function useAgentBinary(): { binary: AgentBinary | null; error: string | null; reload: () => void } {
  const [binary, setBinary] = useState<AgentBinary | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    api
      .get<AgentBinary>('/hosts/agent-binary', undefined, { silent: true })
      .then((b) => {
        setBinary(b);
        setError(null);
      })
      .catch((e) => {
        // what was offered before is not what the server would send now
        setBinary(null);
        setError(e instanceof Error ? e.message : String(e));
      });
  }, []);
  useEffect(reload, [reload]);
  return { binary, error, reload };
}

export function fmtUnix(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return '—';
  return dayjs.unix(secs).format('YYYY-MM-DD HH:mm:ss');
}

type Standing = 'behind' | 'current' | 'newer' | 'unknown';

function standing(version: string | null | undefined, offered: string | null | undefined): Standing {
  if (!version || !offered) return 'unknown';
  const c = compareVersions(version, offered);
  return c < 0 ? 'behind' : c > 0 ? 'newer' : 'current';
}

/** An agent's version, tagged when it is behind (or ahead of) the binary the server offers. */
export function AgentVersion({ version, offered }: { version: string | null | undefined; offered: string | null | undefined }) {
  const t = useT();
  const s = standing(version, offered);
  return (
    <Space size={4} wrap data-testid="agent-version" data-version={version || ''} data-standing={s}>
      <span className="omp-mono" style={{ whiteSpace: 'nowrap' }}>
        {version || '—'}
      </span>
      {s === 'behind' && (
        <Tooltip title={t('upgrade.behindTip', { version: offered ?? '' })}>
          <Tag color="orange" style={{ marginInlineEnd: 0 }}>
            {t('upgrade.behind')}
          </Tag>
        </Tooltip>
      )}
      {s === 'newer' && (
        <Tooltip title={t('upgrade.newerTip', { version: offered ?? '' })}>
          <Tag color="blue" style={{ marginInlineEnd: 0 }}>
            {t('upgrade.newer')}
          </Tag>
        </Tooltip>
      )}
    </Space>
  );
}

/** Every host the caller may see (the hosts API pages at most 500 at a time). */
async function allHosts(): Promise<Host[]> {
  const out: Host[] = [];
  for (let page = 1; page <= 100; page += 1) {
    const p = await api.get<Page<Host>>('/hosts', { page, page_size: 500 }, { silent: true });
    out.push(...(p.items ?? []));
    if (out.length >= p.total || !p.items?.length) break;
  }
  return out;
}

type Scope = 'all' | 'group' | 'selected';

interface Tally {
  total: number;
  behind: number;
  current: number;
  newer: number;
  offline: number;
  /** Online and not at the offered version: the hosts that get the order. */
  toUpgrade: number;
}

function tally(hosts: Host[], offered: string): Tally {
  const n: Tally = { total: hosts.length, behind: 0, current: 0, newer: 0, offline: 0, toUpgrade: 0 };
  for (const h of hosts) {
    const s = standing(h.agent_version, offered);
    if (s === 'behind') n.behind += 1;
    else if (s === 'newer') n.newer += 1;
    else if (s === 'current') n.current += 1;
    if (h.status !== 'online') n.offline += 1;
    // the server skips a host whose version equals the offered one, and offline hosts
    else if (h.agent_version !== offered) n.toUpgrade += 1;
  }
  return n;
}

/**
 * The "Upgrade agents" dialog: what the server offers, how the chosen hosts stand against it,
 * the scope (all / a group / the hosts selected in the table), canary count and timeout.
 */
export function UpgradeAgentsModal({
  selected,
  selectedLabel,
  onClose,
  onStarted,
}: {
  selected: Host[];
  /** How the "selected" scope is named (default: the hosts ticked in the table). */
  selectedLabel?: string;
  onClose: () => void;
  onStarted: (run: UpgradeRun) => void;
}) {
  const t = useT();
  const { modal } = AntApp.useApp();
  const groups = useHostGroups();
  const { binary, error: binaryError } = useAgentBinary();
  const [hosts, setHosts] = useState<Host[] | null>(null);
  const [scope, setScope] = useState<Scope>(selected.length ? 'selected' : 'all');
  const [group, setGroup] = useState<string | undefined>(undefined);
  const [canary, setCanary] = useState<number>(1);
  const [timeoutSecs, setTimeoutSecs] = useState<number>(120);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    allHosts()
      .then(setHosts)
      .catch(() => setHosts([]));
  }, []);

  // the selected hosts as they are now (their version may have changed since they were picked)
  const chosen = useMemo(() => {
    const list = hosts ?? [];
    if (scope === 'all') return list;
    if (scope === 'group') return group ? list.filter((h) => (h.groups ?? []).includes(group)) : [];
    const ids = new Set(selected.map((h) => String(h.id)));
    return list.filter((h) => ids.has(String(h.id)));
  }, [hosts, scope, group, selected]);
  const n = binary ? tally(chosen, binary.version) : null;
  const scopeReady = scope !== 'group' || !!group;
  const canStart = !!binary && !!n && n.toUpgrade > 0 && scopeReady && !busy;

  const start = () => {
    if (!binary || !n) return;
    const body: Record<string, unknown> = { canary, timeout_secs: timeoutSecs };
    if (scope === 'all') body.all = true;
    else if (scope === 'group') body.group = group;
    // the ticked hosts that still exist (one deleted meanwhile would make the server answer 404)
    else body.hosts = chosen.map((h) => Number(h.id));
    modal.confirm({
      title: t('upgrade.confirmTitle', { version: binary.version }),
      content: t('upgrade.confirmText', { n: n.toUpgrade, canary: Math.min(canary, n.toUpgrade), timeout: timeoutSecs }),
      okText: t('upgrade.start'),
      cancelText: t('common.cancel'),
      okButtonProps: { 'data-testid': 'upgrade-confirm-ok' },
      onOk: async () => {
        setBusy(true);
        setError(null);
        try {
          onStarted(await api.post<UpgradeRun>('/hosts/upgrade', body, { silent: true }));
        } catch (e) {
          // 409 (a run is going on, the binary is unusable, nothing chosen), 404, 422: the
          // server's message says what to do
          setError(e instanceof ApiError && e.status ? `${e.message} (HTTP ${e.status})` : String(e instanceof Error ? e.message : e));
        } finally {
          setBusy(false);
        }
      },
    });
  };

  return (
    <Modal
      open
      width={760}
      title={
        <Space>
          <CloudUploadOutlined />
          {t('upgrade.title')}
        </Space>
      }
      onCancel={onClose}
      mask={{ closable: false }}
      destroyOnHidden
      footer={[
        <Button key="cancel" onClick={onClose} data-testid="upgrade-cancel">
          {t('common.cancel')}
        </Button>,
        <Button
          key="start"
          type="primary"
          icon={<CloudUploadOutlined />}
          disabled={!canStart}
          loading={busy}
          onClick={start}
          data-testid="upgrade-start"
        >
          {!n || !n.toUpgrade ? t('upgrade.start') : n.toUpgrade === 1 ? t('upgrade.startOne') : t('upgrade.startN', { n: n.toUpgrade })}
        </Button>,
      ]}
    >
      <div data-testid="upgrade-dialog">
        {binaryError && (
          <Alert type="error" showIcon title={t('upgrade.binaryUnusable')} description={binaryError} style={{ marginBottom: 16 }} data-testid="upgrade-binary-error" />
        )}
        {!binaryError && (
          <Card size="small" title={t('upgrade.offered')} loading={!binary} style={{ marginBottom: 16 }} data-testid="upgrade-binary">
            {binary && (
              <Descriptions size="small" column={2}>
                <Descriptions.Item label={t('upgrade.version')}>
                  <Tag color="geekblue" className="omp-mono" style={{ fontSize: 13 }} data-testid="upgrade-offered-version">
                    {binary.version}
                  </Tag>
                </Descriptions.Item>
                <Descriptions.Item label={t('upgrade.size')}>{fmtBytes(binary.size)}</Descriptions.Item>
                <Descriptions.Item label="SHA-256" span={2}>
                  <Typography.Text className="omp-mono" style={{ fontSize: 12, wordBreak: 'break-all' }} copyable={{ tooltips: [t('common.copy'), t('common.copied')] }} data-testid="upgrade-offered-sha">
                    {binary.sha256}
                  </Typography.Text>
                </Descriptions.Item>
              </Descriptions>
            )}
          </Card>
        )}

        <Form layout="vertical" requiredMark={false}>
          <Form.Item label={t('upgrade.scope')} style={{ marginBottom: 12 }}>
            <Radio.Group value={scope} onChange={(e) => setScope(e.target.value as Scope)} data-testid="upgrade-scope">
              <Space orientation="vertical" size={8}>
                <Radio value="all" data-testid="upgrade-scope-all">
                  {t('upgrade.scopeAll', { n: hosts?.length ?? 0 })}
                </Radio>
                <Space size={8} wrap>
                  <Radio value="group" data-testid="upgrade-scope-group">
                    {t('upgrade.scopeGroup')}
                  </Radio>
                  <Select
                    size="small"
                    showSearch
                    placeholder={t('hosts.group')}
                    style={{ width: 200 }}
                    value={group}
                    onChange={(v) => {
                      setGroup(v);
                      setScope('group');
                    }}
                    options={groups.map((g) => ({ value: g.name, label: `${g.name} (${g.hosts})` }))}
                    notFoundContent={t('upgrade.noGroups')}
                    data-testid="upgrade-group"
                  />
                </Space>
                <Radio value="selected" disabled={!selected.length} data-testid="upgrade-scope-selected">
                  {selectedLabel ?? (selected.length ? t('upgrade.scopeSelected', { n: selected.length }) : t('upgrade.scopeSelectedNone'))}
                </Radio>
              </Space>
            </Radio.Group>
          </Form.Item>

          {!binaryError && (
            <div className="omp-upgrade-tally" data-testid="upgrade-tally">
              {!binary || hosts === null ? (
                <Typography.Text type="secondary">{t('common.loading')}</Typography.Text>
              ) : !scopeReady ? (
                <Typography.Text type="secondary">{t('upgrade.pickGroup')}</Typography.Text>
              ) : (
                <Row gutter={[8, 8]}>
                  <TallyCell label={t('upgrade.countBehind')} value={n?.behind ?? 0} color="#fa8c16" testid="upgrade-count-behind" />
                  <TallyCell label={t('upgrade.countCurrent')} value={n?.current ?? 0} color="#52c41a" testid="upgrade-count-current" />
                  <TallyCell label={t('upgrade.countNewer')} value={n?.newer ?? 0} color="#1677ff" testid="upgrade-count-newer" />
                  <TallyCell label={t('upgrade.countOffline')} value={n?.offline ?? 0} color="#8c8c8c" testid="upgrade-count-offline" />
                </Row>
              )}
              {binary && n && scopeReady && (
                <Typography.Paragraph type="secondary" style={{ margin: '8px 0 0' }} data-testid="upgrade-will">
                  {n.toUpgrade
                    ? t('upgrade.willUpgrade', { n: n.toUpgrade, total: n.total, version: binary.version })
                    : t('upgrade.nothingToDo', { version: binary.version })}
                  {n.newer ? ` ${t('upgrade.newerWarn', { version: binary.version })}` : ''}
                </Typography.Paragraph>
              )}
            </div>
          )}

          <Space size={24} wrap style={{ marginTop: 16 }}>
            <Form.Item label={t('upgrade.canary')} tooltip={t('upgrade.canaryHelp')} style={{ marginBottom: 8 }}>
              <InputNumber min={0} max={1000} precision={0} value={canary} onChange={(v) => setCanary(v ?? 0)} style={{ width: 140 }} data-testid="upgrade-canary" />
            </Form.Item>
            <Form.Item label={t('upgrade.timeout')} tooltip={t('upgrade.timeoutHelp')} style={{ marginBottom: 8 }}>
              <InputNumber
                min={10}
                max={3600}
                precision={0}
                value={timeoutSecs}
                onChange={(v) => setTimeoutSecs(v ?? 120)}
                suffix={t('upgrade.seconds')}
                style={{ width: 140 }}
                data-testid="upgrade-timeout"
              />
            </Form.Item>
          </Space>
          <Alert type="info" showIcon title={canary > 1 ? t('upgrade.howItWorks', { canary }) : canary === 1 ? t('upgrade.howItWorksOne') : t('upgrade.howItWorksNoCanary')} data-testid="upgrade-explain" />
          {error && <Alert type="error" showIcon title={t('upgrade.refused')} description={error} style={{ marginTop: 12 }} data-testid="upgrade-error" />}
        </Form>
      </div>
    </Modal>
  );
}

function TallyCell({ label, value, color, testid }: { label: string; value: number; color: string; testid: string }) {
  return (
    <Col xs={12} sm={6}>
      <div className="omp-tally-cell">
        <div className="omp-tally-value" style={{ color: value ? color : undefined }} data-testid={testid} data-value={value}>
          {value}
        </div>
        <div className="omp-tally-label">{label}</div>
      </div>
    </Col>
  );
}

// ---------------------------------------------------------------- runs

const RUN_COLOR: Record<UpgradeRunState, string> = { running: 'processing', succeeded: 'success', failed: 'error' };
const HOST_COLOR: Record<HostUpgradeState, string> = {
  pending: 'default',
  sent: 'processing',
  succeeded: 'success',
  failed: 'error',
  skipped: 'default',
};

export function RunStateTag({ state }: { state: UpgradeRunState }) {
  const t = useT();
  return (
    <Tag color={RUN_COLOR[state] ?? 'default'} data-testid="upgrade-run-state" data-state={state}>
      {t(`upgrade.runState.${state}` as MsgKey)}
    </Tag>
  );
}

function HostUpgradeTag({ state }: { state: HostUpgradeState }) {
  const t = useT();
  return (
    <Tag color={HOST_COLOR[state] ?? 'default'} data-testid="upgrade-host-state" data-state={state}>
      {t(`upgrade.hostState.${state}` as MsgKey)}
    </Tag>
  );
}

function counts(run: UpgradeRun) {
  const c = { succeeded: 0, failed: 0, skipped: 0, busy: 0 };
  for (const h of run.hosts) {
    if (h.state === 'succeeded') c.succeeded += 1;
    else if (h.state === 'failed') c.failed += 1;
    else if (h.state === 'skipped') c.skipped += 1;
    else c.busy += 1;
  }
  return c;
}

function CountsText({ run }: { run: UpgradeRun }) {
  const t = useT();
  const c = counts(run);
  return (
    <Space size={4} wrap style={{ whiteSpace: 'nowrap' }}>
      {c.succeeded ? <Tag color="success" style={{ marginInlineEnd: 0 }}>{t('upgrade.nSucceeded', { n: c.succeeded })}</Tag> : null}
      {c.failed ? <Tag color="error" style={{ marginInlineEnd: 0 }}>{t('upgrade.nFailed', { n: c.failed })}</Tag> : null}
      {c.skipped ? <Tag style={{ marginInlineEnd: 0 }}>{t('upgrade.nSkipped', { n: c.skipped })}</Tag> : null}
      {c.busy ? <Tag color="processing" style={{ marginInlineEnd: 0 }}>{t('upgrade.nBusy', { n: c.busy })}</Tag> : null}
      {!run.hosts.length ? <Typography.Text type="secondary">—</Typography.Text> : null}
    </Space>
  );
}

function fmtSpan(t: TFunc, run: UpgradeRun, nowSecs: number): string {
  const end = run.finished_at ?? nowSecs;
  const s = Math.max(0, end - run.started_at);
  return s < 60 ? t('time.s', { s }) : t('time.m', { m: Math.floor(s / 60) }) + ` ${s % 60} s`;
}

/** The Agent upgrades tab: the runs, newest first, and one run (?run=<id>) above them. */
export function UpgradeRunsView() {
  const t = useT();
  const [params, setParams] = useSearchParams();
  const runId = params.get('run');
  const [listKey, setListKey] = useState(0);
  const open = (id: string | number) => {
    setParams({ run: String(id) });
    window.scrollTo({ top: 0, behavior: 'smooth' });
  };
  return (
    <div data-testid="upgrades-page">
      <Row gutter={[16, 16]}>
        {runId && (
          <Col xs={24}>
            <RunView key={runId} runId={runId} onEnded={() => setListKey((k) => k + 1)} onClose={() => setParams({})} />
          </Col>
        )}
        <Col xs={24}>
          <RunList refreshKey={listKey} selected={runId} onOpen={open} />
        </Col>
      </Row>
      {!runId && (
        <Typography.Paragraph type="secondary" style={{ marginTop: 12 }}>
          {t('upgrade.startHint')}
        </Typography.Paragraph>
      )}
    </div>
  );
}

function RunList({ refreshKey, selected, onOpen }: { refreshKey: number; selected: string | null; onOpen: (id: string | number) => void }) {
  const t = useT();
  const [items, setItems] = useState<UpgradeRun[] | null>(null);
  const [loading, setLoading] = useState(false);
  const load = useCallback((quiet = false) => {
    if (!quiet) setLoading(true);
    api
      .get<{ items: UpgradeRun[] }>('/hosts/upgrades', undefined, quiet ? { silent: true } : undefined)
      .then((r) => setItems(r.items ?? []))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, []);
  useEffect(() => load(), [load, refreshKey]);
  // while a run is going on its counts change: follow them quietly
  const anyRunning = !!items?.some((r) => r.state === 'running');
  useEffect(() => {
    if (!anyRunning) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, RUN_POLL_MS);
    return () => window.clearInterval(id);
  }, [anyRunning, load]);
  const nowSecs = Math.floor(Date.now() / 1000);

  const columns: ColumnsType<UpgradeRun> = [
    { title: t('upgrade.run'), dataIndex: 'id', width: 80, render: (v: number) => <span className="omp-mono">#{v}</span> },
    { title: t('upgrade.state'), dataIndex: 'state', width: 110, render: (v: UpgradeRunState) => <RunStateTag state={v} /> },
    { title: t('upgrade.toVersion'), dataIndex: 'version', width: 120, render: (v: string) => <span className="omp-mono">{v}</span> },
    { title: t('upgrade.hosts'), key: 'hosts', render: (_: unknown, r) => <CountsText run={r} /> },
    { title: t('upgrade.by'), dataIndex: 'by', width: 120, render: (v: string) => v || '—' },
    { title: t('upgrade.startedAt'), dataIndex: 'started_at', width: 170, render: (v: number) => <span style={{ whiteSpace: 'nowrap' }}>{fmtUnix(v)}</span> },
    { title: t('upgrade.duration'), key: 'duration', width: 110, render: (_: unknown, r) => <span style={{ whiteSpace: 'nowrap' }}>{fmtSpan(t, r, nowSecs)}</span> },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 90,
      render: (_: unknown, r) => (
        <Button
          type="link"
          size="small"
          onClick={(e) => {
            e.stopPropagation();
            onOpen(r.id);
          }}
          data-testid={`upgrade-run-open-${r.id}`}
        >
          {t('hosts.details')}
        </Button>
      ),
    },
  ];

  return (
    <Card
      title={t('upgrade.runsTitle')}
      extra={
        <Tooltip title={t('common.refresh')}>
          <Button icon={<ReloadOutlined />} onClick={() => load()} data-testid="upgrade-runs-refresh" />
        </Tooltip>
      }
    >
      <Typography.Paragraph type="secondary" style={{ marginTop: -4 }}>
        {t('upgrade.runsHelp')}
      </Typography.Paragraph>
      <Table<UpgradeRun>
        rowKey={(r) => String(r.id)}
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={items ?? []}
        data-testid="upgrade-runs"
        rowClassName={(r) => (String(r.id) === selected ? 'omp-row-selected' : '')}
        onRow={(r) =>
          ({
            'data-testid': `upgrade-run-row-${r.id}`,
            onClick: () => onOpen(r.id),
            style: { cursor: 'pointer' },
          }) as React.HTMLAttributes<HTMLElement>
        }
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('upgrade.noRuns')} /> }}
        pagination={(items?.length ?? 0) > 20 ? { pageSize: 20, showSizeChanger: false } : false}
      />
    </Card>
  );
}

function RunView({ runId, onEnded, onClose }: { runId: string; onEnded: () => void; onClose: () => void }) {
  const t = useT();
  const [run, setRun] = useState<UpgradeRun | null>(null);
  const [error, setError] = useState<string | null>(null);
  const onEndedRef = useRef(onEnded);
  onEndedRef.current = onEnded;
  const running = !run || run.state === 'running';

  useEffect(() => {
    if (!running) return;
    let stop = false;
    let timer: number | undefined;
    const tick = async () => {
      try {
        const r = await api.get<UpgradeRun>(`/hosts/upgrades/${encodeURIComponent(runId)}`, undefined, { silent: true });
        if (stop) return;
        setError(null);
        setRun(r);
        if (r.state !== 'running') {
          onEndedRef.current();
          return;
        }
      } catch (e) {
        if (stop) return;
        setError(e instanceof Error ? e.message : String(e));
        // a run the server does not know (restarted, or older than the last 50) will not appear
        if (e instanceof ApiError && (e.status === 404 || e.status === 403 || e.status === 401)) return;
      }
      timer = window.setTimeout(tick, RUN_POLL_MS);
    };
    timer = window.setTimeout(tick, run ? RUN_POLL_MS : 0);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId, running]);

  if (!run) {
    return (
      <Card loading={!error} data-testid="upgrade-run">
        {error && <Alert type="error" showIcon title={error} />}
      </Card>
    );
  }

  const c = counts(run);
  const total = run.hosts.length;
  const done = c.succeeded + c.failed + c.skipped;
  const columns: ColumnsType<HostUpgrade> = [
    {
      title: t('hosts.hostname'),
      dataIndex: 'hostname',
      render: (v: string, h) => (
        <Space size={6}>
          <Link to={`/hosts/${encodeURIComponent(h.host_id)}`} style={{ fontWeight: 600 }}>
            {v}
          </Link>
          {h.canary && (
            <Tooltip title={t('upgrade.canaryTip')}>
              <Tag color="purple" data-testid="upgrade-host-canary" style={{ marginInlineEnd: 0 }}>
                {t('upgrade.canaryTag')}
              </Tag>
            </Tooltip>
          )}
        </Space>
      ),
    },
    { title: t('upgrade.state'), dataIndex: 'state', width: 130, render: (v: HostUpgradeState) => <HostUpgradeTag state={v} /> },
    {
      title: t('upgrade.fromTo'),
      key: 'versions',
      width: 210,
      render: (_: unknown, h) => (
        <span className="omp-mono" style={{ whiteSpace: 'nowrap' }} data-testid="upgrade-host-versions">
          {h.from_version || '—'}
          <ArrowRightOutlined style={{ margin: '0 8px', fontSize: 11, color: '#8c8c8c' }} />
          <Typography.Text strong={h.state === 'succeeded'} type={h.state === 'succeeded' ? 'success' : undefined}>
            {run.version}
          </Typography.Text>
        </span>
      ),
    },
    {
      title: t('upgrade.message'),
      dataIndex: 'message',
      render: (v: string, h) =>
        v ? (
          <Typography.Text type={h.state === 'failed' ? 'danger' : 'secondary'} data-testid="upgrade-host-message">
            {v}
          </Typography.Text>
        ) : (
          <Typography.Text type="secondary">—</Typography.Text>
        ),
    },
  ];

  return (
    <Card
      data-testid="upgrade-run"
      data-run-id={String(run.id)}
      data-state={run.state}
      title={
        <Space wrap>
          <span>{t('upgrade.runTitle', { id: String(run.id), version: run.version })}</span>
          <RunStateTag state={run.state} />
        </Space>
      }
      extra={
        <Button size="small" onClick={onClose} data-testid="upgrade-run-close">
          {t('common.close')}
        </Button>
      }
    >
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} />}
      {run.message && (
        <Alert
          type={run.state === 'failed' ? 'error' : run.state === 'succeeded' ? 'success' : 'info'}
          showIcon
          title={run.message}
          style={{ marginBottom: 12 }}
          data-testid="upgrade-run-message"
        />
      )}
      <Progress
        percent={total ? Math.round((done / total) * 100) : 100}
        success={{ percent: total ? Math.round((c.succeeded / total) * 100) : 0 }}
        status={run.state === 'failed' ? 'exception' : run.state === 'running' ? 'active' : 'normal'}
        format={() => `${done} / ${total}`}
        style={{ marginBottom: 12 }}
      />
      <Descriptions size="small" column={{ xs: 1, md: 2, xl: 4 }} style={{ marginBottom: 12 }}>
        <Descriptions.Item label={t('upgrade.toVersion')}>
          <span className="omp-mono">{run.version}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t('upgrade.by')}>{run.by || '—'}</Descriptions.Item>
        <Descriptions.Item label={t('upgrade.startedAt')}>{fmtUnix(run.started_at)}</Descriptions.Item>
        <Descriptions.Item label={t('upgrade.finishedAt')}>{run.finished_at ? fmtUnix(run.finished_at) : t('upgrade.runState.running')}</Descriptions.Item>
        <Descriptions.Item label={t('upgrade.canary')}>{run.canary}</Descriptions.Item>
        <Descriptions.Item label={t('upgrade.timeout')}>{`${run.timeout_secs} s`}</Descriptions.Item>
        <Descriptions.Item label={t('upgrade.hosts')} span={{ xs: 1, md: 2, xl: 2 }}>
          <CountsText run={run} />
        </Descriptions.Item>
        <Descriptions.Item label="SHA-256" span={{ xs: 1, md: 2, xl: 4 }}>
          <Typography.Text className="omp-mono" style={{ fontSize: 12 }} copyable={{ tooltips: [t('common.copy'), t('common.copied')] }}>
            {run.sha256}
          </Typography.Text>
        </Descriptions.Item>
      </Descriptions>
      <Table<HostUpgrade>
        rowKey={(h) => String(h.host_id)}
        size="small"
        columns={columns}
        dataSource={run.hosts}
        pagination={run.hosts.length > 50 ? { pageSize: 50, showSizeChanger: false } : false}
        onRow={(h) => ({ 'data-testid': `upgrade-host-row-${h.hostname}` }) as React.HTMLAttributes<HTMLElement>}
        data-testid="upgrade-run-hosts"
      />
    </Card>
  );
}
