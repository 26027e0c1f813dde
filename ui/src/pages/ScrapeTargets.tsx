// The "Scrape targets" tab of Monitoring (route /monitoring/targets, metrics:read): every target
// (from omp.toml, read-only, and from the API) with its health, last scrape and last error,
// refreshed every 15 s; add / edit in a drawer validated before it is sent (metrics:write);
// delete with confirmation; and the remote-write status card (hidden when the server has no
// such route). Secrets are write-only: the list says which auth a target has, never the secret.
import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Col,
  Descriptions,
  Drawer,
  Empty,
  Form,
  Input,
  InputNumber,
  Popconfirm,
  Radio,
  Row,
  Select,
  Space,
  Switch,
  Table,
  Tag,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import type { Rule } from 'antd/es/form';
import {
  CheckCircleOutlined,
  CloseCircleOutlined,
  CloudUploadOutlined,
  DeleteOutlined,
  EditOutlined,
  LockOutlined,
  MinusCircleOutlined,
  PlusOutlined,
  QuestionCircleOutlined,
  ReloadOutlined,
} from '@ant-design/icons';
import { Link } from 'react-router-dom';
import {
  api,
  ApiError,
  type Host,
  type Page,
  type RemoteWriteStatus,
  type ScrapeAuth,
  type ScrapeHealth,
  type ScrapeTarget,
  type ScrapeTargetInput,
} from '../api';
import { useT, type MsgKey, type TFunc } from '../i18n';
import { fmtTime, useCan } from '../session';
import { fmtAgo, fmtMs } from '../components/hostBits';

const AUTO_KEY = 'omp.targetsAutoRefresh';
const REFRESH_MS = 15_000;

function rowAttrs(attrs: Record<string, string>): React.HTMLAttributes<HTMLElement> {
  return attrs as React.HTMLAttributes<HTMLElement>;
}

const fmtCount = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString());

/** 15 s, 2 min, 1 h 30 min: a scrape interval. */
function fmtSecs(t: TFunc, s: number): string {
  if (s >= 3600 && s % 60 === 0) {
    const h = Math.floor(s / 3600);
    const m = (s % 3600) / 60;
    return m ? t('time.hm', { h, m }) : t('metrics.hours', { n: h });
  }
  if (s >= 60 && s % 60 === 0) return t('metrics.minutes', { n: s / 60 });
  return t('metrics.seconds', { n: s });
}

export function HealthTag({ health }: { health: ScrapeHealth }) {
  const t = useT();
  const color = health === 'up' ? 'success' : health === 'down' ? 'error' : 'default';
  const icon = health === 'up' ? <CheckCircleOutlined /> : health === 'down' ? <CloseCircleOutlined /> : <QuestionCircleOutlined />;
  return (
    <Tag color={color} icon={icon} data-testid="target-health" data-health={health} style={{ marginInlineEnd: 0 }}>
      {t(`scrape.health.${health}` as MsgKey)}
    </Tag>
  );
}

/** A long error: the first line in the cell, the whole text in a tooltip (and in the expanded row). */
function ErrorText({ text, testid }: { text: string | null | undefined; testid: string }) {
  if (!text) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <Tooltip
      title={<div style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word', maxHeight: 320, overflow: 'auto' }}>{text}</div>}
      styles={{ root: { maxWidth: 520 } }}
    >
      <Typography.Text type="danger" ellipsis style={{ maxWidth: '100%', fontSize: 13 }} data-testid={testid}>
        {text}
      </Typography.Text>
    </Tooltip>
  );
}

function scrapedBy(t: TFunc, x: ScrapeTarget) {
  if (x.via_host === null || x.via_host === undefined || x.via_host === '') {
    return <Typography.Text type="secondary">{t('scrape.server')}</Typography.Text>;
  }
  return (
    <Link to={`/hosts/${encodeURIComponent(String(x.via_host))}`} data-testid="target-via">
      {x.via_hostname || String(x.via_host)}
    </Link>
  );
}

export default function ScrapeTargetsPage() {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const canWrite = can('metrics:write');
  const [items, setItems] = useState<ScrapeTarget[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  const [now, setNow] = useState(() => Date.now());
  const [tick, setTick] = useState(0);
  const [q, setQ] = useState('');
  const [health, setHealth] = useState<ScrapeHealth | ''>('');
  const [editing, setEditing] = useState<ScrapeTarget | 'new' | null>(null);
  const [auto, setAuto] = useState(() => {
    try {
      return localStorage.getItem(AUTO_KEY) !== '0';
    } catch {
      return true;
    }
  });

  const load = useCallback((quiet = false) => {
    if (!quiet) setLoading(true);
    api
      .get<{ items: ScrapeTarget[] }>('/scrape-targets', undefined, { silent: true })
      .then((r) => {
        setItems(r.items ?? []);
        setError(null);
        setNow(Date.now());
      })
      .catch((e) => setError(e instanceof ApiError ? e : new ApiError(0, 'error', String(e))))
      .finally(() => {
        if (!quiet) setLoading(false);
      });
    setTick((n) => n + 1);
  }, []);
  useEffect(() => load(), [load]);
  useEffect(() => {
    if (!auto) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, REFRESH_MS);
    return () => window.clearInterval(id);
  }, [auto, load]);

  const setAutoStored = (v: boolean) => {
    setAuto(v);
    try {
      localStorage.setItem(AUTO_KEY, v ? '1' : '0');
    } catch {
      // storage blocked
    }
  };

  const remove = async (x: ScrapeTarget) => {
    try {
      await api.del(`/scrape-targets/${encodeURIComponent(String(x.id))}`);
      message.success(t('scrape.deleted', { url: x.url }));
      load(true);
    } catch {
      // reported by the API client
    }
  };

  const counts = useMemo(() => {
    const c = { up: 0, down: 0, unknown: 0 };
    for (const x of items ?? []) c[x.health] = (c[x.health] ?? 0) + 1;
    return c;
  }, [items]);

  const shown = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (items ?? []).filter((x) => {
      if (health && x.health !== health) return false;
      if (!needle) return true;
      const hay = [x.job, x.target, x.url, x.via_hostname ?? '', ...Object.entries(x.labels ?? {}).map(([k, v]) => `${k}=${v}`)]
        .join(' ')
        .toLowerCase();
      return hay.includes(needle);
    });
  }, [items, q, health]);

  const columns: ColumnsType<ScrapeTarget> = [
    {
      title: t('scrape.health'),
      dataIndex: 'health',
      width: 100,
      render: (v: ScrapeHealth) => <HealthTag health={v} />,
    },
    {
      title: t('scrape.endpoint'),
      key: 'endpoint',
      width: 290,
      render: (_: unknown, x) => (
        <div>
          <Space size={6} wrap>
            <Typography.Text strong data-testid="target-job">
              {x.job}
            </Typography.Text>
            {x.from_config && (
              <Tooltip title={t('scrape.fromConfigHelp')}>
                <Tag icon={<LockOutlined />} style={{ marginInlineEnd: 0 }} data-testid="target-from-config">
                  {t('scrape.fromConfig')}
                </Tag>
              </Tooltip>
            )}
            {x.auth !== 'none' && (
              <Tooltip title={t('scrape.authSet')}>
                <Tag color="purple" style={{ marginInlineEnd: 0 }}>
                  {t(`scrape.auth.${x.auth}` as MsgKey)}
                </Tag>
              </Tooltip>
            )}
          </Space>
          <div>
            <Typography.Text className="omp-mono" style={{ fontSize: 12 }} data-testid="target-url">
              {x.url}
            </Typography.Text>
          </div>
          {Object.keys(x.labels ?? {}).length > 0 && (
            <Space size={[4, 4]} wrap style={{ marginTop: 4 }} data-testid="target-labels">
              {Object.entries(x.labels).map(([k, val]) => (
                <Tag key={k} className="omp-mono" style={{ marginInlineEnd: 0, fontSize: 12 }}>
                  {k}={val}
                </Tag>
              ))}
            </Space>
          )}
        </div>
      ),
    },
    {
      title: t('scrape.scrapedBy'),
      key: 'via',
      width: 120,
      render: (_: unknown, x) => scrapedBy(t, x),
    },
    {
      title: t('scrape.intervalTimeout'),
      key: 'interval',
      width: 130,
      render: (_: unknown, x) => (
        <span style={{ whiteSpace: 'nowrap' }}>
          {fmtSecs(t, x.interval_secs)} / {fmtSecs(t, x.timeout_secs)}
        </span>
      ),
    },
    {
      title: t('scrape.lastScrape'),
      key: 'last',
      width: 170,
      render: (_: unknown, x) => (
        <div style={{ whiteSpace: 'nowrap' }}>
          {x.last_scrape ? (
            <Tooltip title={fmtTime(x.last_scrape)}>
              <span data-testid="target-last-scrape">{fmtAgo(t, x.last_scrape, now)}</span>
            </Tooltip>
          ) : (
            <Typography.Text type="secondary">{t('common.never')}</Typography.Text>
          )}
          <div>
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              <Tooltip title={t('scrape.duration')}>
                <span data-testid="target-duration">
                  {x.last_duration_secs === null || x.last_duration_secs === undefined ? '—' : fmtMs(Math.round(x.last_duration_secs * 1000))}
                </span>
              </Tooltip>
              {' · '}
              <Tooltip title={t('scrape.sampleLimitIs', { n: fmtCount(x.sample_limit) })}>
                <span data-testid="target-samples">{t('scrape.nSamples', { n: fmtCount(x.samples) })}</span>
              </Tooltip>
            </Typography.Text>
          </div>
        </div>
      ),
    },
    {
      title: t('scrape.lastError'),
      dataIndex: 'last_error',
      render: (v: string | null | undefined) => <ErrorText text={v} testid="target-error" />,
    },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 96,
      fixed: 'right',
      render: (_: unknown, x) =>
        x.from_config ? (
          <Tooltip title={t('scrape.fromConfigHelp')}>
            <Typography.Text type="secondary" style={{ fontSize: 12, whiteSpace: 'nowrap' }}>
              {t('scrape.readOnly')}
            </Typography.Text>
          </Tooltip>
        ) : canWrite ? (
          <Space size={0}>
            <Tooltip title={t('common.edit')}>
              <Button type="link" size="small" icon={<EditOutlined />} onClick={() => setEditing(x)} data-testid="target-edit" />
            </Tooltip>
            <Popconfirm
              title={t('scrape.deleteConfirm', { url: x.url })}
              description={t('scrape.deleteHelp')}
              okText={t('common.delete')}
              cancelText={t('common.cancel')}
              okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
              onConfirm={() => remove(x)}
            >
              <Tooltip title={t('common.delete')}>
                <Button type="link" size="small" danger icon={<DeleteOutlined />} data-testid="target-delete" />
              </Tooltip>
            </Popconfirm>
          </Space>
        ) : (
          <Typography.Text type="secondary">—</Typography.Text>
        ),
    },
  ];

  const filtered = !!q.trim() || !!health;

  return (
    <div data-testid="scrape-targets">
      <Card>
        <div style={{ display: 'flex', justifyContent: 'space-between', flexWrap: 'wrap', gap: 8, marginBottom: 12 }}>
          <Space wrap>
            <Input.Search
              allowClear
              placeholder={t('scrape.searchPlaceholder')}
              style={{ width: 260 }}
              onSearch={setQ}
              onChange={(e) => setQ(e.target.value)}
              data-testid="targets-search"
            />
            <Select
              allowClear
              placeholder={t('scrape.health')}
              style={{ width: 150 }}
              value={health || undefined}
              onChange={(v) => setHealth((v ?? '') as ScrapeHealth | '')}
              options={(['up', 'down', 'unknown'] as const).map((h) => ({
                value: h,
                label: `${t(`scrape.health.${h}`)} (${counts[h]})`,
              }))}
              data-testid="targets-health-filter"
            />
            {items && (
              <Typography.Text type="secondary" data-testid="targets-summary">
                {t('scrape.summary', { n: items.length, up: counts.up, down: counts.down, unknown: counts.unknown })}
              </Typography.Text>
            )}
          </Space>
          <Space wrap>
            <Space size={6}>
              <Switch size="small" checked={auto} onChange={setAutoStored} data-testid="targets-autorefresh" />
              <span>{t('metrics.autoRefresh')}</span>
            </Space>
            <Tooltip title={t('common.refresh')}>
              <Button icon={<ReloadOutlined />} onClick={() => load()} data-testid="targets-refresh" />
            </Tooltip>
            {canWrite && (
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="targets-add">
                {t('scrape.add')}
              </Button>
            )}
          </Space>
        </div>
        {error && (
          <Alert
            type="error"
            showIcon
            style={{ marginBottom: 12 }}
            title={t('scrape.loadFailed')}
            description={error.message}
            data-testid="targets-error"
          />
        )}
        <Table<ScrapeTarget>
          rowKey={(x) => String(x.id)}
          size="middle"
          loading={loading && !items}
          columns={columns}
          dataSource={shown}
          data-testid="targets-table"
          onRow={(x) => rowAttrs({ 'data-testid': 'target-row', 'data-job': x.job, 'data-target': x.target })}
          scroll={{ x: 1080 }}
          expandable={{
            expandedRowRender: (x) => <TargetDetails target={x} />,
            expandRowByClick: false,
          }}
          pagination={shown.length > 50 ? { pageSize: 50, showSizeChanger: false, showTotal: (n) => t('common.total', { n }) } : false}
          locale={{
            emptyText: (
              <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={filtered ? t('scrape.noMatch') : t('scrape.empty')}>
                {!filtered && canWrite && (
                  <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
                    {t('scrape.add')}
                  </Button>
                )}
              </Empty>
            ),
          }}
        />
      </Card>
      <RemoteWriteCard tick={tick} />
      {editing && (
        <TargetDrawer
          target={editing === 'new' ? null : editing}
          onClose={(saved) => {
            setEditing(null);
            if (saved) load(true);
          }}
        />
      )}
    </div>
  );
}

function TargetDetails({ target: x }: { target: ScrapeTarget }) {
  const t = useT();
  return (
    <div style={{ padding: '4px 8px' }} data-testid="target-details">
      <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }}>
        <Descriptions.Item label={t('scrape.url')}>
          <Typography.Text className="omp-mono" copyable={{ tooltips: [t('common.copy'), t('common.copied')] }}>
            {x.url}
          </Typography.Text>
        </Descriptions.Item>
        <Descriptions.Item label={t('scrape.auth')}>{t(`scrape.auth.${x.auth}` as MsgKey)}</Descriptions.Item>
        <Descriptions.Item label={t('scrape.sampleLimit')}>{fmtCount(x.sample_limit)}</Descriptions.Item>
        <Descriptions.Item label={t('scrape.scrapedBy')}>{scrapedBy(t, x)}</Descriptions.Item>
        <Descriptions.Item label={t('scrape.lastScrape')}>{fmtTime(x.last_scrape)}</Descriptions.Item>
        <Descriptions.Item label={t('scrape.source')}>
          {x.from_config ? t('scrape.sourceFile') : t('scrape.sourceApi')}
        </Descriptions.Item>
      </Descriptions>
      <Typography.Text type="secondary">{t('scrape.lastError')}</Typography.Text>
      {x.last_error ? (
        <pre
          className="omp-mono"
          style={{ margin: '4px 0 0', padding: '8px 12px', whiteSpace: 'pre-wrap', background: '#fff2f0', border: '1px solid #ffccc7', borderRadius: 6, color: '#a8071a' }}
          data-testid="target-error-full"
        >
          {x.last_error}
        </pre>
      ) : (
        <div>
          <Typography.Text type="secondary">{t('scrape.noError')}</Typography.Text>
        </div>
      )}
    </div>
  );
}

// ---------------------------------------------------------------- add / edit drawer

interface LabelRow {
  key?: string;
  value?: string;
}

interface FormValues {
  job: string;
  target: string;
  scheme: 'http' | 'https';
  metrics_path: string;
  interval_secs: number;
  timeout_secs: number;
  sample_limit: number;
  labels: LabelRow[];
  auth: ScrapeAuth;
  basic_user?: string;
  basic_password?: string;
  bearer_token?: string;
  /** '' = the server scrapes. */
  via_host: string;
}

/** The server's field names (422 details.field) → this form's. */
const FIELD_OF: Record<string, keyof FormValues> = {
  job: 'job',
  target: 'target',
  scheme: 'scheme',
  metrics_path: 'metrics_path',
  interval_secs: 'interval_secs',
  timeout_secs: 'timeout_secs',
  sample_limit: 'sample_limit',
  basic_auth: 'basic_user',
  bearer_token: 'bearer_token',
  via_host: 'via_host',
};

const JOB_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const TARGET_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*):(\d{1,5})$/;
const LABEL_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why a target is not `host:port` (null: it is). */
export function targetProblem(v: string): MsgKey | null {
  const s = v.trim();
  if (!s) return 'common.required';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return 'scrape.targetNoScheme';
  if (s.includes('/')) return 'scrape.targetNoPath';
  if (s.length > 255) return 'scrape.targetTooLong';
  const m = TARGET_RE.exec(s);
  if (!m) return s.includes(':') ? 'scrape.targetFormat' : 'scrape.targetNoPort';
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return 'scrape.targetPort';
  return null;
}

/** scheme and path of a stored target (older servers send only the URL). */
function splitUrl(x: ScrapeTarget): { scheme: 'http' | 'https'; path: string } {
  const m = /^(https?):\/\/[^/]*(\/.*)?$/.exec(x.url ?? '');
  const scheme = (x.scheme ?? m?.[1] ?? 'http') === 'https' ? 'https' : 'http';
  return { scheme, path: x.metrics_path ?? m?.[2] ?? '/metrics' };
}

function TargetDrawer({ target, onClose }: { target: ScrapeTarget | null; onClose: (saved: boolean) => void }) {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<FormValues>();
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [hosts, setHosts] = useState<Host[]>([]);
  const editing = !!target;
  const had: ScrapeAuth = target?.auth ?? 'none';
  const auth = Form.useWatch('auth', form) ?? had;
  const via = Form.useWatch('via_host', form) ?? '';

  useEffect(() => {
    if (!can('hosts:read')) return;
    api
      .get<Page<Host>>('/hosts', { page_size: 500 }, { silent: true })
      .then((p) => setHosts(p.items ?? []))
      .catch(() => undefined);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const initial = useMemo<FormValues>(() => {
    if (!target) {
      return {
        job: '',
        target: '',
        scheme: 'http',
        metrics_path: '/metrics',
        interval_secs: 15,
        timeout_secs: 10,
        sample_limit: 50000,
        labels: [],
        auth: 'none',
        via_host: '',
      };
    }
    const { scheme, path } = splitUrl(target);
    return {
      job: target.job,
      target: target.target,
      scheme,
      metrics_path: path,
      interval_secs: target.interval_secs,
      timeout_secs: target.timeout_secs,
      sample_limit: target.sample_limit,
      labels: Object.entries(target.labels ?? {}).map(([key, value]) => ({ key, value })),
      auth: target.auth,
      via_host: target.via_host === null || target.via_host === undefined ? '' : String(target.via_host),
    };
  }, [target]);

  const hostOptions = useMemo(() => {
    const opts = hosts.map((h) => ({
      value: String(h.id),
      search: h.hostname,
      label: (
        <Space size={6}>
          <span>{h.hostname}</span>
          <Typography.Text type={h.status === 'online' ? 'success' : 'secondary'} style={{ fontSize: 12 }}>
            {h.status === 'online' ? t('hosts.online') : t('hosts.offline')}
          </Typography.Text>
        </Space>
      ),
    }));
    const current = initial.via_host;
    if (current && !opts.some((o) => o.value === current)) {
      opts.push({ value: current, search: target?.via_hostname ?? current, label: <span>{target?.via_hostname ?? current}</span> });
    }
    return [{ value: '', search: t('scrape.server'), label: <span>{t('scrape.serverLong')}</span> }, ...opts];
  }, [hosts, initial.via_host, target, t]);

  /** A pasted URL (http://host:9100/metrics) fills scheme, target and path. */
  const splitPastedUrl = () => {
    const v = String(form.getFieldValue('target') ?? '').trim();
    const m = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(v);
    if (!m) return;
    const patch: Partial<FormValues> = { scheme: m[1].toLowerCase() as 'http' | 'https', target: m[2] };
    if (m[3] && m[3] !== '/') patch.metrics_path = m[3];
    form.setFieldsValue(patch);
    void form.validateFields(['target']).catch(() => undefined);
  };

  const submit = async () => {
    setFailure(null);
    let v: FormValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    const labels: Record<string, string> = {};
    for (const r of v.labels ?? []) if (r?.key) labels[r.key.trim()] = (r.value ?? '').trim();
    const body: ScrapeTargetInput = {
      job: v.job.trim(),
      target: v.target.trim(),
      scheme: v.scheme,
      metrics_path: v.metrics_path.trim(),
      interval_secs: v.interval_secs,
      timeout_secs: v.timeout_secs,
      sample_limit: v.sample_limit,
      labels,
    };
    const user = (v.basic_user ?? '').trim();
    const pass = v.basic_password ?? '';
    const token = (v.bearer_token ?? '').trim();
    if (v.auth === 'basic' && (user || pass)) body.basic_auth = `${user}:${pass}`;
    if (v.auth === 'bearer' && token) body.bearer_token = token;
    if (editing && v.auth === 'none' && had !== 'none') body.clear_auth = true;
    const viaHost = hosts.find((h) => String(h.id) === v.via_host)?.id ?? (v.via_host || null);
    if (viaHost !== null) body.via_host = viaHost;
    else if (editing) body.via_host = null;
    setBusy(true);
    try {
      if (target) {
        await api.put(`/scrape-targets/${encodeURIComponent(String(target.id))}`, body, { silent: true });
        message.success(t('scrape.saved', { job: body.job }));
      } else {
        await api.post('/scrape-targets', body, { silent: true });
        message.success(t('scrape.added', { job: body.job }));
      }
      onClose(true);
    } catch (e) {
      if (!(e instanceof ApiError)) return;
      if (e.status === 401) return;
      setFailure(e);
      const field = typeof e.details?.field === 'string' ? FIELD_OF[e.details.field] : undefined;
      if (field) form.setFields([{ name: field, errors: [e.message] }]);
    } finally {
      setBusy(false);
    }
  };

  const secretHelp = editing && had === auth ? t('scrape.secretKept') : undefined;
  const secretRule = (name: 'basic_user' | 'basic_password' | 'bearer_token'): Rule => ({
    validator(_: unknown, value: string | undefined) {
      const a = form.getFieldValue('auth') as ScrapeAuth;
      const keep = editing && had === a;
      const s = (value ?? '').trim();
      if (name === 'basic_user' && a === 'basic') {
        if (s.includes(':')) return Promise.reject(new Error(t('scrape.userColon')));
        const pass = String(form.getFieldValue('basic_password') ?? '');
        if (!s && (!keep || pass)) return Promise.reject(new Error(t('common.required')));
      }
      if (name === 'basic_password' && a === 'basic') {
        const user = String(form.getFieldValue('basic_user') ?? '').trim();
        if (!value && (!keep || user)) return Promise.reject(new Error(t('common.required')));
      }
      if (name === 'bearer_token' && a === 'bearer') {
        if (!s && !keep) return Promise.reject(new Error(t('common.required')));
        if (/\s/.test(s)) return Promise.reject(new Error(t('scrape.tokenSpaces')));
      }
      return Promise.resolve();
    },
  });

  return (
    <Drawer
      open
      size={560}
      title={editing ? t('scrape.editTitle', { job: target.job }) : t('scrape.addTitle')}
      onClose={() => onClose(false)}
      destroyOnHidden
      data-testid="target-drawer"
      footer={
        <div style={{ display: 'flex', justifyContent: 'flex-end', gap: 8 }}>
          <Button onClick={() => onClose(false)} data-testid="target-cancel">
            {t('common.cancel')}
          </Button>
          <Button type="primary" loading={busy} onClick={submit} data-testid="target-save">
            {editing ? t('common.save') : t('scrape.addSubmit')}
          </Button>
        </div>
      }
    >
      {failure && (
        <Alert
          type="error"
          showIcon
          style={{ marginBottom: 16 }}
          title={editing ? t('scrape.saveFailed') : t('scrape.addFailed')}
          description={failure.message}
          data-testid="target-form-error"
        />
      )}
      <Form<FormValues> form={form} layout="vertical" initialValues={initial} requiredMark={false} onFinish={submit}>
        <Row gutter={12}>
          <Col span={10}>
            <Form.Item
              name="job"
              label={t('scrape.job')}
              tooltip={t('scrape.jobHelp')}
              rules={[
                { required: true, whitespace: true, message: t('common.required') },
                { max: 100, message: t('scrape.jobTooLong') },
                { pattern: JOB_RE, message: t('scrape.jobFormat') },
              ]}
            >
              <Input placeholder="node" autoComplete="off" data-testid="target-job-input" />
            </Form.Item>
          </Col>
          <Col span={14}>
            <Form.Item
              name="target"
              label={t('scrape.target')}
              extra={t('scrape.targetHelp')}
              rules={[
                {
                  validator: (_: unknown, v: string | undefined) => {
                    const p = targetProblem(v ?? '');
                    return p ? Promise.reject(new Error(t(p))) : Promise.resolve();
                  },
                },
              ]}
            >
              <Input placeholder="10.0.0.5:9100" autoComplete="off" onBlur={splitPastedUrl} data-testid="target-target-input" />
            </Form.Item>
          </Col>
        </Row>
        <Row gutter={12}>
          <Col span={10}>
            <Form.Item name="scheme" label={t('scrape.scheme')}>
              <Radio.Group optionType="button" buttonStyle="solid" data-testid="target-scheme">
                <Radio.Button value="http">http</Radio.Button>
                <Radio.Button value="https">https</Radio.Button>
              </Radio.Group>
            </Form.Item>
          </Col>
          <Col span={14}>
            <Form.Item
              name="metrics_path"
              label={t('scrape.metricsPath')}
              rules={[
                { required: true, message: t('common.required') },
                { pattern: /^\/[^\s]*$/, message: t('scrape.pathFormat') },
              ]}
            >
              <Input placeholder="/metrics" autoComplete="off" data-testid="target-path-input" />
            </Form.Item>
          </Col>
        </Row>
        <Row gutter={12}>
          <Col span={8}>
            <Form.Item
              name="interval_secs"
              label={t('scrape.interval')}
              rules={[
                { required: true, message: t('common.required') },
                { type: 'integer', min: 1, max: 3600, message: t('scrape.intervalRange') },
              ]}
            >
              <InputNumber min={1} max={3600} precision={0} suffix={t('scrape.secs')} style={{ width: '100%' }} data-testid="target-interval" />
            </Form.Item>
          </Col>
          <Col span={8}>
            <Form.Item
              name="timeout_secs"
              label={t('scrape.timeout')}
              dependencies={['interval_secs']}
              rules={[
                { required: true, message: t('common.required') },
                { type: 'integer', min: 1, message: t('scrape.timeoutMin') },
                ({ getFieldValue }) => ({
                  validator(_: unknown, v: number | undefined) {
                    const iv = getFieldValue('interval_secs') as number | undefined;
                    if (v && iv && v > iv) return Promise.reject(new Error(t('scrape.timeoutOverInterval', { n: iv })));
                    return Promise.resolve();
                  },
                }),
              ]}
            >
              <InputNumber min={1} max={3600} precision={0} suffix={t('scrape.secs')} style={{ width: '100%' }} data-testid="target-timeout" />
            </Form.Item>
          </Col>
          <Col span={8}>
            <Form.Item
              name="sample_limit"
              label={t('scrape.sampleLimit')}
              tooltip={t('scrape.sampleLimitHelp')}
              rules={[
                { required: true, message: t('common.required') },
                { type: 'integer', min: 1, message: t('scrape.sampleLimitMin') },
              ]}
            >
              <InputNumber min={1} precision={0} style={{ width: '100%' }} data-testid="target-sample-limit" />
            </Form.Item>
          </Col>
        </Row>

        <Form.Item label={t('scrape.labels')} tooltip={t('scrape.labelsHelp')} required={false}>
          <Form.List name="labels">
            {(fields, { add, remove }) => (
              <div data-testid="target-labels">
                {fields.map((f) => (
                  <Space key={f.key} align="start" style={{ display: 'flex', marginBottom: 4 }}>
                    <Form.Item
                      name={[f.name, 'key']}
                      style={{ marginBottom: 4, width: 200 }}
                      rules={[
                        { required: true, whitespace: true, message: t('scrape.labelNameRequired') },
                        {
                          validator(_: unknown, v: string | undefined) {
                            const s = (v ?? '').trim();
                            if (!s) return Promise.resolve();
                            if (!LABEL_NAME_RE.test(s)) return Promise.reject(new Error(t('scrape.labelNameFormat')));
                            if (s.startsWith('__')) return Promise.reject(new Error(t('scrape.labelNameReserved')));
                            const rows = (form.getFieldValue('labels') ?? []) as LabelRow[];
                            if (rows.filter((r) => (r?.key ?? '').trim() === s).length > 1) {
                              return Promise.reject(new Error(t('scrape.labelNameDuplicate')));
                            }
                            return Promise.resolve();
                          },
                        },
                      ]}
                    >
                      <Input placeholder={t('scrape.labelName')} className="omp-mono" data-testid="target-label-key" />
                    </Form.Item>
                    <span style={{ lineHeight: '32px' }}>=</span>
                    <Form.Item
                      name={[f.name, 'value']}
                      style={{ marginBottom: 4, width: 220 }}
                      rules={[{ required: true, message: t('scrape.labelValueRequired') }]}
                    >
                      <Input placeholder={t('scrape.labelValue')} data-testid="target-label-value" />
                    </Form.Item>
                    <Tooltip title={t('scrape.labelRemove')}>
                      <Button type="text" icon={<MinusCircleOutlined />} onClick={() => remove(f.name)} data-testid="target-label-remove" />
                    </Tooltip>
                  </Space>
                ))}
                <Button type="dashed" icon={<PlusOutlined />} onClick={() => add({ key: '', value: '' })} data-testid="target-label-add">
                  {t('scrape.labelAdd')}
                </Button>
              </div>
            )}
          </Form.List>
        </Form.Item>

        <Form.Item name="auth" label={t('scrape.auth')}>
          <Radio.Group
            data-testid="target-auth"
            onChange={() => void form.validateFields(['basic_user', 'basic_password', 'bearer_token']).catch(() => undefined)}
          >
            <Radio value="none">{t('scrape.auth.none')}</Radio>
            <Radio value="basic">{t('scrape.auth.basic')}</Radio>
            <Radio value="bearer">{t('scrape.auth.bearer')}</Radio>
          </Radio.Group>
        </Form.Item>
        {editing && had !== 'none' && auth === 'none' && (
          <Alert type="warning" showIcon style={{ marginBottom: 16 }} title={t('scrape.authWillClear')} />
        )}
        {auth === 'basic' && (
          <Row gutter={12}>
            <Col span={12}>
              <Form.Item name="basic_user" label={t('scrape.username')} extra={secretHelp} rules={[secretRule('basic_user')]} dependencies={['basic_password']}>
                <Input autoComplete="off" placeholder={secretHelp ? t('scrape.unchanged') : undefined} data-testid="target-basic-user" />
              </Form.Item>
            </Col>
            <Col span={12}>
              <Form.Item name="basic_password" label={t('scrape.password')} rules={[secretRule('basic_password')]} dependencies={['basic_user']}>
                <Input.Password autoComplete="new-password" placeholder={secretHelp ? t('scrape.unchanged') : undefined} data-testid="target-basic-password" />
              </Form.Item>
            </Col>
          </Row>
        )}
        {auth === 'bearer' && (
          <Form.Item name="bearer_token" label={t('scrape.bearerToken')} extra={secretHelp} rules={[secretRule('bearer_token')]}>
            <Input.Password autoComplete="new-password" placeholder={secretHelp ? t('scrape.unchanged') : undefined} data-testid="target-bearer" />
          </Form.Item>
        )}

        <Form.Item
          name="via_host"
          label={t('scrape.scrapedBy')}
          extra={via ? t('scrape.viaHostHelp') : t('scrape.viaServerHelp')}
        >
          <Select
            showSearch={{ optionFilterProp: 'search' }}
            options={hostOptions}
            data-testid="target-via-select"
          />
        </Form.Item>
      </Form>
    </Drawer>
  );
}

// ---------------------------------------------------------------- remote write

/** GET /remote-write, refreshed with the targets; hidden on a server without the route (404). */
function RemoteWriteCard({ tick }: { tick: number }) {
  const t = useT();
  const [items, setItems] = useState<RemoteWriteStatus[] | null>(null);
  const [absent, setAbsent] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [now, setNow] = useState(() => Date.now());

  useEffect(() => {
    if (absent) return;
    api
      .get<{ items: RemoteWriteStatus[] }>('/remote-write', undefined, { silent: true })
      .then((r) => {
        setItems(r.items ?? []);
        setError(null);
        setNow(Date.now());
      })
      .catch((e) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setAbsent(true);
        else if (e instanceof ApiError) setError(e);
      });
  }, [tick, absent]);

  if (absent || (!items && !error)) return null;

  const columns: ColumnsType<RemoteWriteStatus> = [
    {
      title: t('rw.status'),
      key: 'status',
      width: 130,
      // the server keeps the last error after later successes: both set means "worked, with errors"
      render: (_: unknown, r) => {
        const [state, color, key]: [string, string | undefined, MsgKey] = r.last_error
          ? r.last_success
            ? ['errors', 'warning', 'rw.errors']
            : ['failing', 'error', 'rw.failing']
          : r.last_success
            ? ['ok', 'success', 'rw.ok']
            : ['waiting', undefined, 'rw.waiting'];
        return (
          <Tag color={color} data-testid="rw-status" data-status={state}>
            {t(key)}
          </Tag>
        );
      },
    },
    {
      title: t('rw.destination'),
      key: 'dest',
      width: 260,
      render: (_: unknown, r) => (
        <div>
          <Space size={6}>
            <Typography.Text strong>{r.name}</Typography.Text>
            {r.from_config && (
              <Tooltip title={t('rw.fromConfigHelp')}>
                <Tag icon={<LockOutlined />} style={{ marginInlineEnd: 0 }}>
                  {t('scrape.fromConfig')}
                </Tag>
              </Tooltip>
            )}
          </Space>
          <div>
            <Typography.Text className="omp-mono" style={{ fontSize: 12 }}>
              {r.url}
            </Typography.Text>
          </div>
        </div>
      ),
    },
    { title: t('rw.queued'), dataIndex: 'queued_samples', align: 'right', width: 90, render: fmtCount },
    { title: t('rw.sent'), dataIndex: 'sent_samples', align: 'right', width: 100, render: fmtCount },
    {
      title: t('rw.dropped'),
      dataIndex: 'dropped_samples',
      align: 'right',
      width: 90,
      render: (v: number) => (v ? <Typography.Text type="danger">{fmtCount(v)}</Typography.Text> : fmtCount(v)),
    },
    {
      title: t('rw.failedRequests'),
      dataIndex: 'failed_requests',
      align: 'right',
      width: 100,
      render: (v: number) => (v ? <Typography.Text type="warning">{fmtCount(v)}</Typography.Text> : fmtCount(v)),
    },
    {
      title: t('rw.lastSuccess'),
      dataIndex: 'last_success',
      width: 110,
      render: (v: string | null | undefined) =>
        v ? (
          <Tooltip title={fmtTime(v)}>
            <span style={{ whiteSpace: 'nowrap' }}>{fmtAgo(t, v, now)}</span>
          </Tooltip>
        ) : (
          <Typography.Text type="secondary">{t('common.never')}</Typography.Text>
        ),
    },
    { title: t('scrape.lastError'), dataIndex: 'last_error', render: (v: string | null | undefined) => <ErrorText text={v} testid="rw-error" /> },
  ];

  return (
    <Card
      style={{ marginTop: 16 }}
      title={
        <Space>
          <CloudUploadOutlined />
          {t('rw.title')}
        </Space>
      }
      extra={<Typography.Text type="secondary">{t('rw.readOnly')}</Typography.Text>}
      data-testid="remote-write"
    >
      {error && <Alert type="error" showIcon style={{ marginBottom: 12 }} title={t('rw.loadFailed')} description={error.message} />}
      {items && items.length === 0 ? (
        <Typography.Text type="secondary" data-testid="rw-empty">
          {t('rw.empty')}
        </Typography.Text>
      ) : (
        <Table<RemoteWriteStatus>
          rowKey={(r) => `${r.name}|${r.url}`}
          size="small"
          columns={columns}
          dataSource={items ?? []}
          pagination={false}
          scroll={{ x: 1000 }}
          tableLayout="fixed"
          locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('rw.empty')} /> }}
          data-testid="rw-table"
        />
      )}
    </Card>
  );
}
