// Remote execution pieces shared by the exec page and the host detail page: the form that
// starts a job (POST /exec) and the live view of one job (polls GET /exec/{id} every second
// while it runs, per-host rows with expandable stdout/stderr, cancel).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Descriptions,
  Form,
  Input,
  InputNumber,
  Popconfirm,
  Segmented,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { CaretRightOutlined, StopOutlined } from '@ant-design/icons';
import { api, ApiError, type ExecTargets, type Host, type HostGroup, type Job, type JobHost, type JobSummary, type Page } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';
import { fmtMs, HostJobStateTag, JobStateTag, labelRule, parseLabels } from './hostBits';

/** How a job's command reads: argv joined with shell-style quoting, or the shell line. */
export function commandText(j: Pick<JobSummary, 'argv' | 'command'>): string {
  if (j.command) return j.command;
  return (j.argv ?? []).map((a) => (a === '' ? "''" : /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
}

export function CommandCell({ job }: { job: Pick<JobSummary, 'argv' | 'command'> }) {
  const t = useT();
  return (
    <Space size={4}>
      {job.command ? <Tag color="volcano">{t('exec.shellTag')}</Tag> : null}
      <Typography.Text className="omp-mono" ellipsis={{ tooltip: commandText(job) }} style={{ maxWidth: 420 }}>
        {commandText(job)}
      </Typography.Text>
    </Space>
  );
}

/** One argument per line; blank lines are dropped. */
export function parseArgv(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
}

type TargetMode = 'hosts' | 'groups' | 'labels' | 'all';
type CmdMode = 'argv' | 'shell';

interface ExecValues {
  argv: string;
  command: string;
  hosts: (string | number)[];
  groups: string[];
  labels: string[];
  timeout_secs: number;
}

/**
 * The "run a command" form. With `host` the target is fixed to that host (detail page);
 * otherwise the user picks hosts, groups, labels or all hosts.
 */
export function ExecForm({ host, onStarted }: { host?: Host; onStarted: (job: Job) => void }) {
  const t = useT();
  const can = useCan();
  const { modal } = AntApp.useApp();
  const canShell = can('exec:shell');
  const [form] = Form.useForm<ExecValues>();
  const [cmdMode, setCmdMode] = useState<CmdMode>('argv');
  const [targetMode, setTargetMode] = useState<TargetMode>('hosts');
  const [hosts, setHosts] = useState<Host[]>([]);
  const [groups, setGroups] = useState<HostGroup[]>([]);
  const [busy, setBusy] = useState(false);
  const argvText = Form.useWatch('argv', form) ?? '';
  const argvPreview = useMemo(() => parseArgv(argvText), [argvText]);

  useEffect(() => {
    if (host) return;
    api
      .get<Page<Host>>('/hosts', { page: 1, page_size: 500 }, { silent: true })
      .then((p) => setHosts(p.items ?? []))
      .catch(() => undefined);
    api
      .get<{ items: HostGroup[] }>('/host-groups', undefined, { silent: true })
      .then((r) => setGroups(r.items ?? []))
      .catch(() => undefined);
  }, [host]);

  const run = async () => {
    let v: ExecValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    const body: Record<string, unknown> = { timeout_secs: v.timeout_secs || 60 };
    if (cmdMode === 'shell' && canShell) body.command = v.command.trim();
    else body.argv = parseArgv(v.argv ?? '');
    let targets: ExecTargets;
    if (host) targets = { hosts: [host.id] };
    else if (targetMode === 'all') targets = { all: true };
    else if (targetMode === 'groups') targets = { groups: v.groups };
    else if (targetMode === 'labels') targets = { labels: parseLabels(v.labels).labels };
    else targets = { hosts: v.hosts };
    body.targets = targets;

    const go = async () => {
      setBusy(true);
      try {
        const job = await api.post<Job>('/exec', body);
        onStarted(job);
      } catch {
        // reported
      } finally {
        setBusy(false);
      }
    };
    if (targets.all) {
      modal.confirm({
        title: t('exec.confirmAllTitle'),
        content: t('exec.confirmAll'),
        okText: t('exec.run'),
        cancelText: t('common.cancel'),
        okButtonProps: { danger: true, 'data-testid': 'exec-confirm-all' },
        onOk: go,
      });
    } else {
      await go();
    }
  };

  const hostOptions = hosts.map((h) => ({
    value: h.id,
    label: h.hostname,
    title: h.hostname,
    status: h.status,
  }));

  return (
    <Form form={form} layout="vertical" initialValues={{ argv: '', command: '', hosts: [], groups: [], labels: [], timeout_secs: 60 }}>
      {!host && (
        <Form.Item label={t('exec.targets')} required style={{ marginBottom: 8 }}>
          <Segmented<TargetMode>
            value={targetMode}
            onChange={setTargetMode}
            options={[
              { value: 'hosts', label: <span data-testid="exec-target-mode-hosts">{t('exec.target.hosts')}</span> },
              { value: 'groups', label: <span data-testid="exec-target-mode-groups">{t('exec.target.groups')}</span> },
              { value: 'labels', label: <span data-testid="exec-target-mode-labels">{t('exec.target.labels')}</span> },
              { value: 'all', label: <span data-testid="exec-target-mode-all">{t('exec.target.all')}</span> },
            ]}
            data-testid="exec-target-mode"
          />
        </Form.Item>
      )}
      {!host && targetMode === 'hosts' && (
        <Form.Item name="hosts" rules={[{ required: true, message: t('exec.required.hosts') }]}>
          <Select
            mode="multiple"
            allowClear
            showSearch={{ optionFilterProp: 'title' }}
            placeholder={t('exec.hostsPlaceholder')}
            options={hostOptions}
            optionRender={(o) => (
              <span data-testid={`exec-target-option-${o.data.title}`}>
                <Tag color={o.data.status === 'online' ? 'green' : 'default'} style={{ marginInlineEnd: 6 }}>
                  {o.data.status === 'online' ? t('hosts.online') : t('hosts.offline')}
                </Tag>
                {o.data.title}
              </span>
            )}
            data-testid="exec-targets"
          />
        </Form.Item>
      )}
      {!host && targetMode === 'groups' && (
        <Form.Item name="groups" rules={[{ required: true, message: t('exec.required.groups') }]}>
          <Select
            mode="multiple"
            allowClear
            placeholder={t('exec.groupsPlaceholder')}
            options={groups.map((g) => ({ value: g.name, label: `${g.name} (${g.hosts})` }))}
            data-testid="exec-target-groups"
          />
        </Form.Item>
      )}
      {!host && targetMode === 'labels' && (
        <Form.Item
          name="labels"
          extra={t('exec.labelsHelp')}
          rules={[{ required: true, message: t('exec.required.labels') }, labelRule(t)]}
        >
          <Select mode="tags" open={false} suffixIcon={null} placeholder="env=prod" data-testid="exec-target-labels" />
        </Form.Item>
      )}
      {!host && targetMode === 'all' && (
        <Alert type="warning" showIcon title={t('exec.allWarning')} style={{ marginBottom: 16 }} data-testid="exec-target-all" />
      )}

      {canShell && (
        <Form.Item label={t('exec.command')} style={{ marginBottom: 8 }}>
          <Segmented<CmdMode>
            value={cmdMode}
            onChange={setCmdMode}
            options={[
              { value: 'argv', label: <span data-testid="exec-mode-argv">{t('exec.mode.argv')}</span> },
              { value: 'shell', label: <span data-testid="exec-mode-shell">{t('exec.mode.shell')}</span> },
            ]}
            data-testid="exec-mode"
          />
        </Form.Item>
      )}
      {cmdMode === 'argv' || !canShell ? (
        <Form.Item
          name="argv"
          label={canShell ? undefined : t('exec.commandArgv')}
          extra={
            <Space size={[4, 4]} wrap style={{ marginTop: 4 }}>
              <span>{t('exec.argvHelp')}</span>
              {argvPreview.length > 0 && <span>{t('exec.argvRuns')}</span>}
              {argvPreview.map((a, i) => (
                <Tag key={i} className="omp-mono" style={{ marginInlineEnd: 0 }}>
                  {a}
                </Tag>
              ))}
            </Space>
          }
          rules={[
            {
              validator: (_: unknown, v: string | undefined) =>
                parseArgv(v ?? '').length ? Promise.resolve() : Promise.reject(new Error(t('exec.required.argv'))),
            },
          ]}
        >
          <Input.TextArea
            className="omp-mono"
            autoSize={{ minRows: 3, maxRows: 10 }}
            placeholder={'uname\n-a'}
            spellCheck={false}
            data-testid="exec-argv"
          />
        </Form.Item>
      ) : (
        <Form.Item
          name="command"
          extra={t('exec.shellHelp')}
          rules={[{ required: true, whitespace: true, message: t('exec.required.command') }]}
        >
          <Input.TextArea
            className="omp-mono"
            autoSize={{ minRows: 2, maxRows: 8 }}
            placeholder="df -h | grep /dev/"
            spellCheck={false}
            data-testid="exec-command"
          />
        </Form.Item>
      )}
      <Space align="end" wrap>
        <Form.Item name="timeout_secs" label={t('exec.timeout')} style={{ marginBottom: 0 }}>
          <InputNumber min={1} max={86400} precision={0} style={{ width: 140 }} suffix="s" data-testid="exec-timeout" />
        </Form.Item>
        <Button type="primary" icon={<CaretRightOutlined />} loading={busy} onClick={run} data-testid="exec-run">
          {t('exec.run')}
        </Button>
      </Space>
    </Form>
  );
}

function OutputBlock({ label, text, kind }: { label: string; text: string; kind: 'stdout' | 'stderr' }) {
  if (!text) return null;
  return (
    <div style={{ marginBottom: 8 }}>
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {label}
      </Typography.Text>
      <pre className={`omp-mono omp-output${kind === 'stderr' ? ' omp-output-err' : ''}`} data-testid={`exec-${kind}`}>
        {text}
      </pre>
    </div>
  );
}

function HostOutput({ h }: { h: JobHost }) {
  const t = useT();
  const empty = !h.stdout && !h.stderr && !h.error;
  return (
    <div data-testid={`exec-output-${h.hostname}`}>
      {h.truncated && (
        <Alert type="warning" showIcon title={t('exec.truncated')} style={{ marginBottom: 8 }} data-testid="exec-truncated" />
      )}
      {h.error && (
        <Alert
          type={h.state === 'cancelled' || h.state === 'timeout' || h.state === 'offline' ? 'warning' : 'error'}
          showIcon
          title={h.error}
          style={{ marginBottom: 8 }}
          data-testid="exec-error"
        />
      )}
      <OutputBlock label={t('exec.stdout')} text={h.stdout} kind="stdout" />
      <OutputBlock label={t('exec.stderr')} text={h.stderr} kind="stderr" />
      {empty && <Typography.Text type="secondary">{h.state === 'pending' || h.state === 'running' ? t('exec.waiting') : t('exec.noOutput')}</Typography.Text>}
    </div>
  );
}

const AUTO_EXPAND_MAX = 5;

/** Live view of one job: polls while running, per-host rows, cancel. */
export function JobView({ jobId, initial, onChange }: { jobId: string | number; initial?: Job | null; onChange?: (job: Job) => void }) {
  const t = useT();
  const can = useCan();
  const [job, setJob] = useState<Job | null>(initial && String(initial.id) === String(jobId) ? initial : null);
  const [error, setError] = useState<string | null>(null);
  const [expanded, setExpanded] = useState<React.Key[]>([]);
  const [cancelling, setCancelling] = useState(false);
  const seen = useRef<Set<string>>(new Set());
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;

  const accept = useCallback((j: Job) => {
    setJob(j);
    const fresh = j.hosts.filter((h) => !seen.current.has(String(h.host_id)));
    if (fresh.length) {
      fresh.forEach((h) => seen.current.add(String(h.host_id)));
      if (j.hosts.length <= AUTO_EXPAND_MAX) setExpanded((e) => [...e, ...fresh.map((h) => String(h.host_id))]);
    }
    onChangeRef.current?.(j);
  }, []);

  useEffect(() => {
    seen.current = new Set();
    setExpanded([]);
    setError(null);
    if (initial && String(initial.id) === String(jobId)) accept(initial);
    else setJob(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId]);

  const running = !job || job.state === 'running';
  useEffect(() => {
    if (!running) return;
    let stop = false;
    let timer: number | undefined;
    const tick = async () => {
      try {
        const j = await api.get<Job>(`/exec/${encodeURIComponent(jobId)}`, undefined, { silent: true });
        if (stop) return;
        setError(null);
        accept(j);
        if (j.state !== 'running') return;
      } catch (e) {
        if (stop) return;
        setError(e instanceof Error ? e.message : String(e));
        // a job that does not exist (or may not be seen) will not appear later
        if (e instanceof ApiError && (e.status === 404 || e.status === 403 || e.status === 401)) return;
      }
      timer = window.setTimeout(tick, 1000);
    };
    // fetch at once when nothing is known yet, otherwise a second after the answer we have
    timer = window.setTimeout(tick, job ? 1000 : 0);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId, running, accept]);

  const cancel = async () => {
    setCancelling(true);
    try {
      accept(await api.post<Job>(`/exec/${encodeURIComponent(jobId)}/cancel`));
    } catch {
      // reported
    } finally {
      setCancelling(false);
    }
  };

  const columns: ColumnsType<JobHost> = [
    { title: t('hosts.hostname'), dataIndex: 'hostname', render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
    { title: t('exec.hostStateCol'), dataIndex: 'state', width: 130, render: (v: JobHost['state']) => <HostJobStateTag state={v} /> },
    {
      title: t('exec.exitCode'),
      dataIndex: 'exit_code',
      width: 110,
      render: (v: number | null | undefined) =>
        v === null || v === undefined ? '—' : <Typography.Text type={v === 0 ? undefined : 'danger'} className="omp-mono" data-testid="exec-exit-code">{v}</Typography.Text>,
    },
    { title: t('exec.duration'), dataIndex: 'duration_ms', width: 120, render: (v: number | null | undefined) => fmtMs(v) },
    {
      title: t('exec.output'),
      key: 'output',
      render: (_: unknown, h: JobHost) => (
        <Space size={4}>
          {h.truncated && <Tag color="warning">{t('exec.truncatedTag')}</Tag>}
          <Typography.Text type="secondary" ellipsis style={{ maxWidth: 360 }} className="omp-mono">
            {(h.error || h.stdout || h.stderr || '').split('\n').find((l) => l.trim()) ?? ''}
          </Typography.Text>
        </Space>
      ),
    },
  ];

  if (!job) {
    return (
      <Card loading={!error} data-testid="exec-result">
        {error && <Alert type="error" showIcon title={error} />}
      </Card>
    );
  }

  return (
    <Card
      data-testid="exec-result"
      data-job-id={String(job.id)}
      data-state={job.state}
      title={
        <Space wrap>
          <span>{t('exec.jobTitle', { id: String(job.id) })}</span>
          <JobStateTag state={job.state} />
        </Space>
      }
      extra={
        job.state === 'running' && can('exec:run') ? (
          <Popconfirm
            title={t('exec.cancelConfirm')}
            okText={t('exec.cancelJob')}
            cancelText={t('common.no')}
            okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
            onConfirm={cancel}
          >
            <Button danger icon={<StopOutlined />} loading={cancelling} data-testid="exec-cancel">
              {t('exec.cancelJob')}
            </Button>
          </Popconfirm>
        ) : null
      }
    >
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} />}
      <Descriptions size="small" column={{ xs: 1, md: 2, xl: 4 }} style={{ marginBottom: 12 }}>
        <Descriptions.Item label={t('exec.command')} span={{ xs: 1, md: 2, xl: 4 }}>
          <CommandCell job={job} />
        </Descriptions.Item>
        <Descriptions.Item label={t('exec.createdBy')}>{job.created_by || '—'}</Descriptions.Item>
        <Descriptions.Item label={t('exec.createdAt')}>{fmtTime(job.created_at)}</Descriptions.Item>
        <Descriptions.Item label={t('exec.timeout')}>{job.timeout_secs ? `${job.timeout_secs} s` : '—'}</Descriptions.Item>
        <Descriptions.Item label={t('exec.summary')}>
          <span data-testid="exec-summary">
            {t('exec.summaryText', { ok: job.hosts_ok, failed: job.hosts_failed, total: job.hosts_total })}
          </span>
        </Descriptions.Item>
      </Descriptions>
      <Table<JobHost>
        rowKey={(h) => String(h.host_id)}
        size="small"
        columns={columns}
        dataSource={job.hosts}
        pagination={job.hosts.length > 50 ? { pageSize: 50, showSizeChanger: false } : false}
        onRow={(h) => ({ 'data-testid': `exec-result-row-${h.hostname}` }) as React.HTMLAttributes<HTMLElement>}
        expandable={{
          expandedRowKeys: expanded,
          onExpandedRowsChange: (keys) => setExpanded([...keys]),
          expandedRowRender: (h) => <HostOutput h={h} />,
        }}
        data-testid="exec-result-table"
      />
    </Card>
  );
}
