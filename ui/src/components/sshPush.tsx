// SSH push and CSV import (issue 3): the "Over SSH" and "Import CSV" tabs of the "Add host"
// dialog, and the live view of a push (polls GET /hosts/ssh-push/{id} every second while it
// runs: the 8 steps with their state and detail). Passwords and keys are sent once and then
// dropped from the form; they never go into a URL or into storage.
import { useEffect, useRef, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Col,
  Form,
  Input,
  InputNumber,
  Radio,
  Row,
  Select,
  Space,
  Steps,
  Table,
  Tag,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import {
  CheckCircleOutlined,
  CloseCircleOutlined,
  DownloadOutlined,
  LoadingOutlined,
  UploadOutlined,
} from '@ant-design/icons';
import dayjs from 'dayjs';
import { Link } from 'react-router-dom';
import { api, ApiError, type ImportAnswer, type ImportRow, type PushJob, type PushState, type PushStep } from '../api';
import { useT, type MsgKey, type TFunc } from '../i18n';
import { fmtTime } from '../session';
import { labelRule, parseLabels, useHostGroups } from './hostBits';

export const DEFAULT_PREFIX = '/opt/omp-agent';
export const DEFAULT_DATA_DIR = '/var/lib/omp-agent';
export const HOST_KEY_COMMAND = 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub';
export const CSV_HEADER = 'address,port,user,password,labels,groups,prefix,data_dir,expected_host_key';
const CSV_TEMPLATE = `${CSV_HEADER}\n# 10.0.0.5,22,root,,env=prod;role=web,web;prod,${DEFAULT_PREFIX},${DEFAULT_DATA_DIR},\n`;

/** The contract says RFC 3339; the server sends Unix seconds for pushes. Both are shown alike. */
export function fmtPushTime(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'number') return dayjs.unix(v).format('YYYY-MM-DD HH:mm:ss');
  return fmtTime(v);
}

const STEP_KEYS: Record<string, MsgKey> = {
  connect: 'push.step.connect',
  'host key': 'push.step.hostKey',
  login: 'push.step.login',
  'check target': 'push.step.checkTarget',
  'check folders': 'push.step.checkFolders',
  'copy agent': 'push.step.copyAgent',
  'install and enroll': 'push.step.install',
  'wait for the agent': 'push.step.wait',
};

export function stepName(t: TFunc, name: string): string {
  const k = STEP_KEYS[name];
  return k ? t(k) : name;
}

export function pushTarget(j: Pick<PushJob, 'address' | 'port' | 'user'>): string {
  return `${j.user}@${j.address}:${j.port}`;
}

/** The step that failed, or the one running now. */
export function currentStep(j: PushJob): PushStep | undefined {
  return j.steps.find((s) => s.state === 'failed') ?? j.steps.find((s) => s.state === 'running');
}

const PUSH_COLOR: Record<PushState, string> = { running: 'processing', ok: 'success', failed: 'error' };

export function PushStateTag({ state, testId = 'push-state' }: { state: PushState; testId?: string }) {
  const t = useT();
  return (
    <Tag color={PUSH_COLOR[state] ?? 'default'} data-testid={testId} data-state={state}>
      {t(`push.state.${state}`)}
    </Tag>
  );
}

export function HostLink({ id, testId }: { id: string | number; testId?: string }) {
  const t = useT();
  return (
    <Link to={`/hosts/${encodeURIComponent(String(id))}`} data-testid={testId} style={{ whiteSpace: 'nowrap' }}>
      {t('push.openHost', { id: String(id) })}
    </Link>
  );
}

const STEP_STATUS = { pending: 'wait', running: 'process', ok: 'finish', failed: 'error' } as const;

/** The 8 steps of a push, as it is now (no fetching). */
export function PushSteps({ job }: { job: PushJob }) {
  const t = useT();
  const at = job.steps.findIndex((s) => s.state === 'running' || s.state === 'failed');
  // nothing highlighted once every step is done
  const current = at >= 0 ? at : job.state === 'running' ? 0 : job.steps.length;
  return (
    <div data-testid="push-steps">
      <Steps
        orientation="vertical"
        size="small"
        current={current}
        items={job.steps.map((s, i) => ({
          key: s.name,
          status: STEP_STATUS[s.state] ?? 'wait',
          icon: s.state === 'running' ? <LoadingOutlined /> : undefined,
          title: (
            <span data-testid={`push-step-${i}`} data-state={s.state}>
              {stepName(t, s.name)}
            </span>
          ),
          content: s.detail ? (
            <Typography.Text
              type={s.state === 'failed' ? 'danger' : 'secondary'}
              style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word', fontSize: 12 }}
            >
              {s.detail}
            </Typography.Text>
          ) : s.state === 'running' ? (
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {t('push.inProgress')}
            </Typography.Text>
          ) : null,
        }))}
      />
    </div>
  );
}

/** One push, polled every second until it is ok or failed. Remount (key) for another id. */
export function PushProgress({ id, initial }: { id: number; initial?: PushJob | null }) {
  const t = useT();
  const [job, setJob] = useState<PushJob | null>(initial && initial.id === id ? initial : null);
  const [error, setError] = useState<string | null>(null);
  const running = !job || job.state === 'running';
  useEffect(() => {
    if (!running) return;
    let stop = false;
    let timer: number | undefined;
    const tick = async () => {
      try {
        const j = await api.get<PushJob>(`/hosts/ssh-push/${encodeURIComponent(String(id))}`, undefined, { silent: true });
        if (stop) return;
        setError(null);
        setJob(j);
        if (j.state !== 'running') return;
      } catch (e) {
        if (stop) return;
        setError(e instanceof Error ? e.message : String(e));
        // a push the server no longer knows will not come back
        if (e instanceof ApiError && (e.status === 404 || e.status === 403 || e.status === 401)) return;
      }
      timer = window.setTimeout(tick, 1000);
    };
    timer = window.setTimeout(tick, job ? 1000 : 0);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, running]);

  if (!job) {
    return error ? (
      <Alert type="error" showIcon title={error} data-testid="push-error" />
    ) : (
      <Typography.Text type="secondary">{t('common.loading')}</Typography.Text>
    );
  }
  const failedStep = job.steps.find((s) => s.state === 'failed');
  return (
    <div data-testid="push-progress" data-push-id={job.id}>
      <Space wrap style={{ marginBottom: 12 }}>
        <Typography.Text strong className="omp-mono">
          {pushTarget(job)}
        </Typography.Text>
        <PushStateTag state={job.state} />
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          {t('push.startedBy', { by: job.created_by || '—', time: fmtPushTime(job.created_at) })}
        </Typography.Text>
      </Space>
      {job.host_key && (
        <div style={{ marginBottom: 12 }}>
          <Typography.Text type="secondary">{t('push.hostKey')}: </Typography.Text>
          <Typography.Text className="omp-mono" copyable={{ tooltips: [t('common.copy'), t('common.copied')] }} data-testid="push-host-key">
            {job.host_key}
          </Typography.Text>
        </div>
      )}
      {job.state === 'failed' && (
        <Alert
          type="error"
          showIcon
          style={{ marginBottom: 16 }}
          data-testid="push-failure"
          title={failedStep ? t('push.failedAt', { step: stepName(t, failedStep.name) }) : t('push.failed')}
          description={
            failedStep?.detail ? (
              <span style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>{failedStep.detail}</span>
            ) : undefined
          }
        />
      )}
      {job.state === 'ok' && (
        <Alert
          type="success"
          showIcon
          style={{ marginBottom: 16 }}
          data-testid="push-done"
          title={t('push.done')}
          description={job.host_id !== null && job.host_id !== undefined ? <HostLink id={job.host_id} testId="push-host-link" /> : undefined}
        />
      )}
      {error && <Alert type="warning" showIcon title={error} style={{ marginBottom: 12 }} />}
      <PushSteps job={job} />
    </div>
  );
}

// ---------------------------------------------------------------- validation shared with the server

const ADDRESS_RE = /^[A-Za-z0-9.:-]{1,253}$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const DIR_RE = /^\/[A-Za-z0-9/._-]{0,254}$/;

function dirOk(v: string): boolean {
  return DIR_RE.test(v) && !v.split('/').includes('..');
}

/** The form's field for a field the server names in a validation error. */
function formField(field: string, auth: 'password' | 'key'): keyof SshValues | null {
  switch (field) {
    case 'address':
    case 'port':
    case 'user':
    case 'prefix':
    case 'data_dir':
    case 'expected_host_key':
    case 'labels':
    case 'groups':
    case 'passphrase':
      return field;
    case 'password':
    case 'private_key':
      return auth === 'password' ? 'password' : 'private_key';
    default:
      return null;
  }
}

/** A button that reads a local text file (nothing is uploaded). */
function TextFileButton({
  accept,
  label,
  testId,
  onText,
}: {
  accept: string;
  label: string;
  testId: string;
  onText: (text: string) => void;
}) {
  const ref = useRef<HTMLInputElement>(null);
  return (
    <>
      <Button size="small" icon={<UploadOutlined />} onClick={() => ref.current?.click()} data-testid={testId}>
        {label}
      </Button>
      <input
        ref={ref}
        type="file"
        accept={accept}
        style={{ display: 'none' }}
        data-testid={`${testId}-input`}
        onChange={async (e) => {
          const f = e.target.files?.[0];
          e.target.value = '';
          if (f) onText(await f.text());
        }}
      />
    </>
  );
}

// ---------------------------------------------------------------- "Over SSH" tab

interface SshValues {
  address: string;
  port: number;
  user: string;
  auth: 'password' | 'key';
  password?: string;
  private_key?: string;
  passphrase?: string;
  labels: string[];
  groups: string[];
  prefix: string;
  data_dir: string;
  expected_host_key?: string;
}

const SECRETS = { password: undefined, private_key: undefined, passphrase: undefined };

export function SshPushTab() {
  const t = useT();
  const { message } = AntApp.useApp();
  const groups = useHostGroups();
  const [form] = Form.useForm<SshValues>();
  const auth = Form.useWatch('auth', form) ?? 'password';
  const [busy, setBusy] = useState(false);
  const [push, setPush] = useState<PushJob | null>(null);

  const submit = async () => {
    let v: SshValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    const body: Record<string, unknown> = {
      address: v.address.trim(),
      port: v.port || 22,
      user: v.user.trim(),
      prefix: (v.prefix || DEFAULT_PREFIX).trim(),
      data_dir: (v.data_dir || DEFAULT_DATA_DIR).trim(),
    };
    if (v.auth === 'key') {
      body.private_key = v.private_key ?? '';
      if (v.passphrase) body.passphrase = v.passphrase;
    } else {
      body.password = v.password ?? '';
    }
    const labels = parseLabels(v.labels).labels;
    if (Object.keys(labels).length) body.labels = labels;
    const g = (v.groups ?? []).map((x) => x.trim()).filter(Boolean);
    if (g.length) body.groups = g;
    if (v.expected_host_key?.trim()) body.expected_host_key = v.expected_host_key.trim();
    // the credentials go out once and are not kept: a new push needs them typed again
    form.setFieldsValue(SECRETS);
    setBusy(true);
    try {
      setPush(await api.post<PushJob>('/hosts/ssh-push', body, { silent: true }));
    } catch (e) {
      if (e instanceof ApiError && e.code === 'validation_failed' && typeof e.details.field === 'string') {
        const f = formField(e.details.field, v.auth);
        if (f) form.setFields([{ name: f, errors: [e.message] }]);
        else message.error(e.message);
      } else if (e instanceof ApiError && e.status !== 401) {
        message.error(e.message || e.code);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div>
      {push && (
        <div data-testid="ssh-result">
          <PushProgress key={push.id} id={push.id} initial={push} />
          <Space style={{ marginTop: 8 }}>
            <Button onClick={() => setPush(null)} data-testid="ssh-again">
              {t('ssh.again')}
            </Button>
            <Link to="/hosts/ssh">{t('ssh.allPushes')}</Link>
          </Space>
        </div>
      )}
      <div style={push ? { display: 'none' } : undefined}>
        <Typography.Paragraph type="secondary">{t('ssh.intro')}</Typography.Paragraph>
        <Form
          form={form}
          layout="vertical"
          autoComplete="off"
          initialValues={{ port: 22, user: 'root', auth: 'password', labels: [], groups: [], prefix: DEFAULT_PREFIX, data_dir: DEFAULT_DATA_DIR }}
        >
          <Row gutter={12}>
            <Col xs={24} sm={12}>
              <Form.Item
                name="address"
                label={t('ssh.address')}
                rules={[
                  { required: true, whitespace: true, message: t('ssh.addressRequired') },
                  {
                    validator: (_, v: string | undefined) =>
                      !v || (ADDRESS_RE.test(v.trim()) && !v.trim().startsWith('-'))
                        ? Promise.resolve()
                        : Promise.reject(new Error(t('ssh.addressBad'))),
                  },
                ]}
              >
                <Input placeholder="10.0.0.5" data-testid="ssh-address" autoComplete="off" />
              </Form.Item>
            </Col>
            <Col xs={8} sm={4}>
              <Form.Item name="port" label={t('ssh.port')} rules={[{ required: true, message: t('common.required') }]}>
                <InputNumber min={1} max={65535} precision={0} style={{ width: '100%' }} data-testid="ssh-port" />
              </Form.Item>
            </Col>
            <Col xs={16} sm={8}>
              <Form.Item
                name="user"
                label={t('ssh.user')}
                rules={[
                  { required: true, whitespace: true, message: t('ssh.userRequired') },
                  {
                    validator: (_, v: string | undefined) =>
                      !v || USER_RE.test(v.trim()) ? Promise.resolve() : Promise.reject(new Error(t('ssh.userBad'))),
                  },
                ]}
              >
                <Input data-testid="ssh-user" autoComplete="off" />
              </Form.Item>
            </Col>
          </Row>
          <Form.Item name="auth" label={t('ssh.auth')}>
            <Radio.Group optionType="button" buttonStyle="solid" data-testid="ssh-auth-mode">
              <Radio.Button value="password">
                <span data-testid="ssh-auth-password">{t('ssh.authPassword')}</span>
              </Radio.Button>
              <Radio.Button value="key">
                <span data-testid="ssh-auth-key">{t('ssh.authKey')}</span>
              </Radio.Button>
            </Radio.Group>
          </Form.Item>
          {auth === 'password' ? (
            <Form.Item
              name="password"
              label={t('ssh.password')}
              extra={t('ssh.secretHelp')}
              rules={[{ required: true, message: t('ssh.passwordRequired') }]}
            >
              <Input.Password autoComplete="new-password" data-testid="ssh-password" />
            </Form.Item>
          ) : (
            <>
              <Form.Item
                label={
                  <Space>
                    <span>{t('ssh.key')}</span>
                    <TextFileButton
                      accept="*"
                      label={t('ssh.keyFromFile')}
                      testId="ssh-key-file"
                      onText={(text) => form.setFieldsValue({ private_key: text })}
                    />
                  </Space>
                }
                required
                extra={t('ssh.secretHelp')}
              >
                <Form.Item
                  noStyle
                  name="private_key"
                  rules={[{ required: true, whitespace: true, message: t('ssh.keyRequired') }]}
                >
                  <Input.TextArea
                    rows={5}
                    className="omp-mono"
                    spellCheck={false}
                    autoComplete="off"
                    placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
                    data-testid="ssh-key"
                  />
                </Form.Item>
              </Form.Item>
              <Form.Item name="passphrase" label={`${t('ssh.passphrase')} (${t('common.optional')})`}>
                <Input.Password autoComplete="new-password" data-testid="ssh-passphrase" />
              </Form.Item>
            </>
          )}
          <Row gutter={12}>
            <Col xs={24} sm={12}>
              <Form.Item name="labels" label={t('hosts.labels')} extra={t('enroll.labelsHelp')} rules={[labelRule(t)]}>
                <Select mode="tags" open={false} suffixIcon={null} placeholder="env=prod" data-testid="ssh-labels" />
              </Form.Item>
            </Col>
            <Col xs={24} sm={12}>
              <Form.Item name="groups" label={t('hosts.groups')} extra={t('enroll.groupsHelp')}>
                <Select
                  mode="tags"
                  placeholder={t('hosts.groupsPlaceholder')}
                  options={groups.map((g) => ({ value: g.name, label: g.name }))}
                  data-testid="ssh-groups"
                />
              </Form.Item>
            </Col>
          </Row>
          <Row gutter={12}>
            <Col xs={24} sm={12}>
              <Form.Item
                name="prefix"
                label={t('ssh.prefix')}
                rules={[
                  { required: true, message: t('common.required') },
                  { validator: (_, v: string | undefined) => (!v || dirOk(v.trim()) ? Promise.resolve() : Promise.reject(new Error(t('ssh.dirBad')))) },
                ]}
              >
                <Input className="omp-mono" data-testid="ssh-prefix" />
              </Form.Item>
            </Col>
            <Col xs={24} sm={12}>
              <Form.Item
                name="data_dir"
                label={t('ssh.dataDir')}
                rules={[
                  { required: true, message: t('common.required') },
                  { validator: (_, v: string | undefined) => (!v || dirOk(v.trim()) ? Promise.resolve() : Promise.reject(new Error(t('ssh.dirBad')))) },
                ]}
              >
                <Input className="omp-mono" data-testid="ssh-data-dir" />
              </Form.Item>
            </Col>
          </Row>
          <Form.Item
            name="expected_host_key"
            label={`${t('ssh.expectedKey')} (${t('common.optional')})`}
            extra={
              <span>
                {t('ssh.expectedKeyHelp')}{' '}
                <Typography.Text code className="omp-mono" copyable={{ tooltips: [t('common.copy'), t('common.copied')] }}>
                  {HOST_KEY_COMMAND}
                </Typography.Text>
                {' '}
                {t('ssh.expectedKeyHelp2')}
              </span>
            }
            rules={[
              {
                validator: (_, v: string | undefined) =>
                  !v?.trim() || (v.trim().startsWith('SHA256:') && v.trim().length < 100)
                    ? Promise.resolve()
                    : Promise.reject(new Error(t('ssh.expectedKeyBad'))),
              },
            ]}
          >
            <Input className="omp-mono" placeholder="SHA256:…" data-testid="ssh-expected-key" autoComplete="off" />
          </Form.Item>
          <Button type="primary" loading={busy} onClick={submit} data-testid="ssh-submit">
            {t('ssh.submit')}
          </Button>
        </Form>
      </div>
    </div>
  );
}

// ---------------------------------------------------------------- "Import CSV" tab

function isImportAnswer(v: unknown): v is ImportAnswer {
  return !!v && typeof v === 'object' && Array.isArray((v as ImportAnswer).rows);
}

function downloadTemplate() {
  const url = URL.createObjectURL(new Blob([CSV_TEMPLATE], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'omp-hosts.csv';
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function ImportRowsTable({ rows }: { rows: ImportRow[] }) {
  const t = useT();
  const columns: ColumnsType<ImportRow> = [
    { title: t('import.line'), dataIndex: 'line', width: 70 },
    {
      title: t('ssh.address'),
      dataIndex: 'address',
      render: (v: string) => <span className="omp-mono">{v || '—'}</span>,
    },
    {
      title: t('import.result'),
      key: 'result',
      render: (_: unknown, r) =>
        r.ok ? (
          <Tag color="success" icon={<CheckCircleOutlined />}>
            {t('import.rowOk')}
          </Tag>
        ) : (
          <div data-testid={`import-row-errors-${r.line}`}>
            {(r.errors ?? []).map((e, i) => (
              <div key={i}>
                <Tag color="error" icon={<CloseCircleOutlined />} className="omp-mono">
                  {e.field || '—'}
                </Tag>{' '}
                <Typography.Text type="danger">{e.message}</Typography.Text>
              </div>
            ))}
          </div>
        ),
    },
  ];
  return (
    <Table<ImportRow>
      rowKey={(r) => String(r.line)}
      size="small"
      columns={columns}
      dataSource={rows}
      pagination={rows.length > 20 ? { pageSize: 20, showSizeChanger: false } : false}
      onRow={(r) => ({ 'data-testid': `import-row-${r.line}`, 'data-ok': String(r.ok) }) as React.HTMLAttributes<HTMLElement>}
      data-testid="import-rows"
    />
  );
}

/** Pushes started together, each polled until it ends (by id, or the whole list when many). */
export function usePushes(initial: PushJob[]): PushJob[] {
  const [pushes, setPushes] = useState<PushJob[]>(initial);
  const [lost, setLost] = useState<Set<number>>(() => new Set());
  const [round, setRound] = useState(0);
  const runningIds = pushes
    .filter((p) => p.state === 'running' && !lost.has(p.id))
    .map((p) => p.id)
    .join(',');
  useEffect(() => {
    if (!runningIds) return;
    let stop = false;
    const timer = window.setTimeout(async () => {
      const ids = runningIds.split(',').map(Number);
      const fresh = new Map<number, PushJob>();
      const gone: number[] = [];
      if (ids.length <= 20) {
        await Promise.all(
          ids.map((id) =>
            api
              .get<PushJob>(`/hosts/ssh-push/${id}`, undefined, { silent: true })
              .then((j) => void fresh.set(j.id, j))
              .catch((e) => {
                if (e instanceof ApiError && e.status === 404) gone.push(id);
              }),
          ),
        );
      } else {
        try {
          const all = await api.get<{ items: PushJob[] }>('/hosts/ssh-push', undefined, { silent: true });
          for (const j of all.items ?? []) if (ids.includes(j.id)) fresh.set(j.id, j);
        } catch {
          // next round
        }
      }
      if (stop) return;
      if (fresh.size) setPushes((ps) => ps.map((p) => fresh.get(p.id) ?? p));
      if (gone.length) setLost((l) => new Set([...l, ...gone]));
      setRound((n) => n + 1);
    }, 1000);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [runningIds, round]);
  return pushes;
}

function StartedPushes({ initial }: { initial: PushJob[] }) {
  const t = useT();
  const pushes = usePushes(initial);
  const done = pushes.filter((p) => p.state !== 'running').length;
  const ok = pushes.filter((p) => p.state === 'ok').length;
  const columns: ColumnsType<PushJob> = [
    { title: t('push.target'), key: 'target', render: (_: unknown, j) => <span className="omp-mono" style={{ whiteSpace: 'nowrap' }}>{pushTarget(j)}</span> },
    { title: t('push.stateCol'), dataIndex: 'state', width: 110, render: (v: PushState) => <PushStateTag state={v} testId="import-push-state" /> },
    {
      title: t('push.step'),
      key: 'step',
      render: (_: unknown, j) => {
        const s = currentStep(j);
        if (!s)
          return j.state === 'ok' ? (
            <Typography.Text type="secondary">{t('push.allSteps')}</Typography.Text>
          ) : j.state === 'running' ? (
            <Typography.Text type="secondary">{t('push.inProgress')}</Typography.Text>
          ) : (
            '—'
          );
        return (
          <div>
            <div>{stepName(t, s.name)}</div>
            {s.detail ? (
              <Typography.Text type={s.state === 'failed' ? 'danger' : 'secondary'} style={{ fontSize: 12, whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
                {s.detail}
              </Typography.Text>
            ) : null}
          </div>
        );
      },
    },
    {
      title: t('push.host'),
      dataIndex: 'host_id',
      width: 120,
      render: (v: PushJob['host_id']) => (v !== null && v !== undefined ? <HostLink id={v} /> : '—'),
    },
  ];
  return (
    <div data-testid="import-pushes">
      <Alert
        type={done < pushes.length ? 'info' : ok === pushes.length ? 'success' : 'warning'}
        showIcon
        style={{ marginBottom: 12 }}
        title={t('import.progress', { done, total: pushes.length, ok, failed: done - ok })}
      />
      <Table<PushJob>
        rowKey={(j) => String(j.id)}
        size="small"
        columns={columns}
        dataSource={pushes}
        pagination={pushes.length > 20 ? { pageSize: 20, showSizeChanger: false } : false}
        onRow={(j) => ({ 'data-testid': `import-push-${j.id}` }) as React.HTMLAttributes<HTMLElement>}
        expandable={{ expandedRowRender: (j) => <PushSteps job={j} /> }}
      />
    </div>
  );
}

export function ImportCsvTab() {
  const t = useT();
  const { message } = AntApp.useApp();
  const [csv, setCsv] = useState('');
  const [key, setKey] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [busy, setBusy] = useState<'' | 'validate' | 'run'>('');
  const [checked, setChecked] = useState<{ sig: string; answer: ImportAnswer } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [started, setStarted] = useState<PushJob[] | null>(null);

  // what validity depends on: the text and whether a key is there for rows without a password
  const sig = `${csv}\u0000${key.trim() ? 1 : 0}`;
  const rows = checked?.answer.rows ?? [];
  const stale = !!checked && checked.sig !== sig;
  const allValid = !!checked && !stale && rows.length > 0 && rows.every((r) => r.ok);
  const invalid = rows.filter((r) => !r.ok).length;

  const body = (dryRun: boolean) => {
    const b: Record<string, unknown> = { csv };
    if (key.trim()) {
      b.private_key = key;
      if (passphrase) b.passphrase = passphrase;
    }
    if (dryRun) b.dry_run = true;
    return b;
  };

  const send = async (dryRun: boolean) => {
    setBusy(dryRun ? 'validate' : 'run');
    setError(null);
    const at = sig;
    try {
      const a = await api.post<ImportAnswer>('/hosts/import', body(dryRun), { silent: true });
      if (!dryRun && a.pushes) {
        // the passwords in the CSV and the key were used: drop them
        setCsv('');
        setKey('');
        setPassphrase('');
        setChecked(null);
        setStarted(a.pushes);
        message.success(t('import.started', { n: a.pushes.length }));
      } else {
        setChecked({ sig: at, answer: a });
      }
    } catch (e) {
      if (e instanceof ApiError && isImportAnswer(e.body)) setChecked({ sig: at, answer: e.body });
      else if (e instanceof ApiError && isImportAnswer(e.details)) setChecked({ sig: at, answer: e.details });
      else if (e instanceof ApiError && e.status === 401) return;
      else setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy('');
    }
  };

  if (started) {
    return (
      <div>
        <StartedPushes initial={started} />
        <Space style={{ marginTop: 12 }}>
          <Button onClick={() => setStarted(null)} data-testid="import-again">
            {t('import.again')}
          </Button>
          <Link to="/hosts/ssh">{t('ssh.allPushes')}</Link>
        </Space>
      </div>
    );
  }

  return (
    <div>
      <Typography.Paragraph type="secondary">{t('import.intro')}</Typography.Paragraph>
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', flexWrap: 'wrap', gap: 8, marginBottom: 6 }}>
        <Typography.Text strong>{t('import.csv')}</Typography.Text>
        <Space wrap>
          <TextFileButton accept=".csv,text/csv" label={t('import.fromFile')} testId="import-file" onText={setCsv} />
          <Button size="small" icon={<DownloadOutlined />} onClick={downloadTemplate} data-testid="import-template">
            {t('import.template')}
          </Button>
        </Space>
      </div>
      <Input.TextArea
        value={csv}
        onChange={(e) => setCsv(e.target.value)}
        rows={7}
        className="omp-mono"
        spellCheck={false}
        autoComplete="off"
        placeholder={`${CSV_HEADER}\n10.0.0.5,22,root,,env=prod,web,,,`}
        data-testid="import-csv"
      />
      <Typography.Paragraph type="secondary" style={{ fontSize: 12, marginTop: 4 }}>
        {t('import.csvHelp')}
      </Typography.Paragraph>
      <Row gutter={12}>
        <Col xs={24} sm={16}>
          <div style={{ display: 'flex', alignItems: 'center', gap: 8, marginBottom: 6 }}>
            <Typography.Text strong>{`${t('import.key')} (${t('common.optional')})`}</Typography.Text>
            <TextFileButton accept="*" label={t('ssh.keyFromFile')} testId="import-key-file" onText={setKey} />
          </div>
          <Input.TextArea
            value={key}
            onChange={(e) => setKey(e.target.value)}
            rows={3}
            className="omp-mono"
            spellCheck={false}
            autoComplete="off"
            placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
            data-testid="import-key"
          />
        </Col>
        <Col xs={24} sm={8}>
          <div style={{ marginBottom: 6 }}>
            <Typography.Text strong>{`${t('ssh.passphrase')} (${t('common.optional')})`}</Typography.Text>
          </div>
          <Input.Password
            value={passphrase}
            onChange={(e) => setPassphrase(e.target.value)}
            autoComplete="new-password"
            data-testid="import-passphrase"
          />
        </Col>
      </Row>
      <Typography.Paragraph type="secondary" style={{ fontSize: 12, marginTop: 4 }}>
        {t('import.keyHelp')}
      </Typography.Paragraph>
      <Space wrap style={{ marginBottom: 12 }}>
        <Button loading={busy === 'validate'} disabled={!csv.trim() || busy === 'run'} onClick={() => send(true)} data-testid="import-validate">
          {t('import.validate')}
        </Button>
        <Tooltip title={allValid ? undefined : t('import.runHelp')}>
          <Button type="primary" loading={busy === 'run'} disabled={!allValid || busy === 'validate'} onClick={() => send(false)} data-testid="import-run">
            {allValid ? t('import.run', { n: rows.length }) : t('import.runPlain')}
          </Button>
        </Tooltip>
      </Space>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} data-testid="import-error" />}
      {checked && (
        <div data-testid="import-check">
          <Alert
            type={stale ? 'info' : invalid ? 'error' : rows.length ? 'success' : 'warning'}
            showIcon
            style={{ marginBottom: 12 }}
            data-testid="import-summary"
            title={
              stale
                ? t('import.stale')
                : !rows.length
                  ? t('import.noRows')
                  : invalid
                    ? t('import.someInvalid', { invalid, total: rows.length })
                    : t('import.allValid', { n: rows.length })
            }
          />
          <ImportRowsTable rows={rows} />
        </div>
      )}
    </div>
  );
}
