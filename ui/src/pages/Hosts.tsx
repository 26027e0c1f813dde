// Hosts module: the frame (title, global maintenance switch, Hosts / Remote execution / SSH push
// / Agent upgrades tabs) and its routes, the hosts table (filters, 5 s auto refresh, agent
// version against the offered one, edit / maintenance / delete, row selection and "Upgrade
// agents" with hosts:upgrade) and the "Add host" dialog (enrollment command, push over SSH, CSV
// import, enrollment tokens).
import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Empty,
  Form,
  Input,
  InputNumber,
  Modal,
  Popconfirm,
  Select,
  Space,
  Spin,
  Switch,
  Table,
  Tabs,
  Tag,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import {
  CloudUploadOutlined,
  CodeOutlined,
  DeleteOutlined,
  EditOutlined,
  PlusOutlined,
  ReloadOutlined,
  ToolOutlined,
} from '@ant-design/icons';
import dayjs from 'dayjs';
import { Link, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { api, type EnrollToken, type EnrollTokenCreated, type Host, type Maintenance, type Page } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';
import { NoPermission } from '../components/common';
import {
  EditHostModal,
  fmtAgo,
  fmtBytes,
  GroupTags,
  HostStatusTag,
  LabelTags,
  labelRule,
  MaintenanceModal,
  MaintenanceTag,
  parseLabels,
  useHostGroups,
} from '../components/hostBits';
import { ImportCsvTab, SshPushTab } from '../components/sshPush';
import { AgentVersion, UpgradeAgentsModal, UpgradeRunsView, useAgentBinary } from '../components/agentUpgrade';
import HostDetailPage from './HostDetail';
import ExecPage from './Exec';
import SshPage from './SshPushes';

// the web terminal carries xterm.js: its own chunk, loaded only when a terminal is opened
const TerminalPage = lazy(() => import('./Terminal'));

function rowTestId(id: string): React.HTMLAttributes<HTMLElement> {
  return { 'data-testid': id } as React.HTMLAttributes<HTMLElement>;
}

export default function HostsModule() {
  const t = useT();
  const can = useCan();
  const navigate = useNavigate();
  const location = useLocation();
  if (!can('hosts:read')) return <NoPermission />;
  const path = location.pathname.replace(/\/+$/, '');
  const tab = path === '/hosts/exec' ? 'exec' : path === '/hosts/ssh' ? 'ssh' : path === '/hosts/upgrades' ? 'upgrades' : 'hosts';
  const frame = (children: React.ReactNode) => (
    <div data-testid="hosts-page">
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', gap: 12, flexWrap: 'wrap', marginBottom: 16 }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('module.hosts')}
        </Typography.Title>
        <GlobalMaintenanceSwitch />
      </div>
      <GlobalMaintenanceBanner />
      <Tabs
        activeKey={tab}
        onChange={(k) => navigate(k === 'hosts' ? '/hosts' : `/hosts/${k}`)}
        items={[
          { key: 'hosts', label: <span data-testid="tab-hosts">{t('hosts.tabHosts')}</span> },
          ...(can('exec:run') ? [{ key: 'exec', label: <span data-testid="tab-exec">{t('hosts.tabExec')}</span> }] : []),
          { key: 'ssh', label: <span data-testid="tab-ssh">{t('hosts.tabSsh')}</span> },
          ...(can('hosts:upgrade') ? [{ key: 'upgrades', label: <span data-testid="tab-upgrades">{t('hosts.tabUpgrades')}</span> }] : []),
        ]}
        style={{ marginBottom: 0 }}
      />
      {children}
    </div>
  );
  return (
    <Routes>
      <Route index element={frame(<HostsTable />)} />
      <Route path="exec" element={frame(can('exec:run') ? <ExecPage /> : <NoPermission />)} />
      <Route path="ssh" element={frame(<SshPage />)} />
      <Route path="upgrades" element={frame(can('hosts:upgrade') ? <UpgradeRunsView /> : <NoPermission />)} />
      <Route path=":id" element={<HostDetailPage />} />
      <Route
        path=":id/terminal"
        element={
          <Suspense
            fallback={
              <div style={{ padding: 80, textAlign: 'center' }}>
                <Spin />
              </div>
            }
          >
            <TerminalPage />
          </Suspense>
        }
      />
    </Routes>
  );
}

// ---------------------------------------------------------------- global maintenance

/** Shared between the switch and the banner: one fetch per change. */
let gmListeners: ((m: Maintenance) => void)[] = [];
let gmValue: Maintenance | null = null;
function publishGm(m: Maintenance) {
  gmValue = m;
  gmListeners.forEach((f) => f(m));
}
function useGlobalMaintenance(): [Maintenance | null, () => void] {
  const [m, setM] = useState<Maintenance | null>(gmValue);
  const reload = useCallback(() => {
    api
      .get<Maintenance>('/maintenance', undefined, { silent: true })
      .then(publishGm)
      .catch(() => undefined);
  }, []);
  useEffect(() => {
    gmListeners.push(setM);
    return () => {
      gmListeners = gmListeners.filter((f) => f !== setM);
    };
  }, []);
  return [m, reload];
}

function GlobalMaintenanceSwitch() {
  const t = useT();
  const can = useCan();
  const { modal, message } = AntApp.useApp();
  const [m, reload] = useGlobalMaintenance();
  const [turningOn, setTurningOn] = useState(false);
  useEffect(reload, [reload]);
  const on = !!m?.enabled;
  const turnOff = () =>
    modal.confirm({
      title: t('maint.globalOffTitle'),
      content: t('maint.globalOffConfirm'),
      okText: t('maint.turnOff'),
      cancelText: t('common.cancel'),
      okButtonProps: { 'data-testid': 'maint-global-off-ok' },
      onOk: async () => {
        try {
          publishGm(await api.put<Maintenance>('/maintenance', { enabled: false }));
          message.success(t('maint.offDone'));
        } catch {
          // reported
        }
      },
    });
  return (
    <Space>
      <Tooltip title={t('maint.globalHelp')}>
        <span>{t('maint.global')}</span>
      </Tooltip>
      <Switch
        checked={on}
        disabled={!can('hosts:write') || m === null}
        onChange={(v) => (v ? setTurningOn(true) : turnOff())}
        checkedChildren={t('maint.on')}
        unCheckedChildren={t('maint.off')}
        data-testid="maint-global"
      />
      {turningOn && (
        <MaintenanceModal
          host={null}
          onClose={(done) => {
            setTurningOn(false);
            if (done) reload();
          }}
        />
      )}
    </Space>
  );
}

function GlobalMaintenanceBanner() {
  const t = useT();
  const [m] = useGlobalMaintenance();
  if (!m?.enabled) return null;
  return (
    <Alert
      type="warning"
      showIcon
      icon={<ToolOutlined />}
      style={{ marginBottom: 12 }}
      data-testid="maint-global-banner"
      title={t('maint.globalOnTitle')}
      description={
        <span>
          {m.reason ? <strong>{m.reason}</strong> : null}
          {m.reason ? ' — ' : null}
          {t('maint.byWhen', { by: m.by || '—', since: fmtTime(m.since) })}
          {' · '}
          {m.until ? t('maint.untilTime', { until: fmtTime(m.until) }) : t('maint.untilOff')}
        </span>
      }
    />
  );
}

// ---------------------------------------------------------------- hosts table

interface Filters {
  q: string;
  status: '' | 'online' | 'offline';
  group: string;
  label: string;
}
const EMPTY: Filters = { q: '', status: '', group: '', label: '' };
const AUTO_KEY = 'omp.hostsAutoRefresh';

function HostsTable() {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const canWrite = can('hosts:write');
  const canTerminal = can('terminal:open');
  const canUpgrade = can('hosts:upgrade');
  const navigate = useNavigate();
  const groups = useHostGroups();
  const { binary } = useAgentBinary();
  const [draftQ, setDraftQ] = useState('');
  const [draftLabel, setDraftLabel] = useState('');
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(50);
  const [data, setData] = useState<Page<Host> | null>(null);
  const [loading, setLoading] = useState(false);
  const [now, setNow] = useState(() => Date.now());
  const [auto, setAuto] = useState(() => {
    try {
      return localStorage.getItem(AUTO_KEY) !== '0';
    } catch {
      return true;
    }
  });
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<Host | null>(null);
  const [maint, setMaint] = useState<Host | null>(null);
  // hosts ticked for an agent upgrade, kept across pages and filters
  const [picked, setPicked] = useState<Host[]>([]);
  const [upgrading, setUpgrading] = useState(false);

  const load = useCallback(
    (quiet = false) => {
      if (!quiet) setLoading(true);
      api
        .get<Page<Host>>(
          '/hosts',
          {
            q: filters.q.trim() || undefined,
            status: filters.status || undefined,
            group: filters.group || undefined,
            label: filters.label.trim() || undefined,
            page,
            page_size: pageSize,
          },
          quiet ? { silent: true } : undefined,
        )
        .then((p) => {
          setData(p);
          setNow(Date.now());
        })
        .catch(() => undefined)
        .finally(() => {
          if (!quiet) setLoading(false);
        });
    },
    [filters, page, pageSize],
  );
  useEffect(() => load(), [load]);
  useEffect(() => {
    if (!auto) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, 5000);
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

  const apply = (patch: Partial<Filters>) => {
    setFilters((f) => ({ ...f, ...patch }));
    setPage(1);
  };

  const endMaintenance = async (h: Host) => {
    try {
      await api.del(`/hosts/${encodeURIComponent(h.id)}/maintenance`);
      message.success(t('maint.offDone'));
      load(true);
    } catch {
      // reported
    }
  };

  const remove = async (h: Host) => {
    try {
      await api.del(`/hosts/${encodeURIComponent(h.id)}`);
      message.success(t('hosts.deleted', { name: h.hostname }));
      load(true);
    } catch {
      // reported
    }
  };

  const columns: ColumnsType<Host> = [
    {
      title: t('hosts.hostname'),
      dataIndex: 'hostname',
      render: (v: string, h) => (
        <Space size={4} wrap>
          <Link to={`/hosts/${encodeURIComponent(h.id)}`} data-testid={`host-link-${v}`} style={{ fontWeight: 600 }}>
            {v}
          </Link>
          <MaintenanceTag m={h.maintenance} />
        </Space>
      ),
    },
    {
      title: t('hosts.status'),
      dataIndex: 'status',
      width: 150,
      render: (_: unknown, h) => (
        <div style={{ whiteSpace: 'nowrap' }}>
          <HostStatusTag host={h} />
          <div>
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {fmtAgo(t, h.last_seen_at, now)}
            </Typography.Text>
          </div>
        </div>
      ),
    },
    {
      title: t('hosts.system'),
      key: 'system',
      render: (_: unknown, h) => (
        <div>
          <div>{h.os || '—'}</div>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {[h.kernel, h.arch].filter(Boolean).join(' · ') || '—'}
          </Typography.Text>
        </div>
      ),
    },
    {
      title: t('hosts.agent'),
      dataIndex: 'agent_version',
      width: 100,
      render: (v: string) => <AgentVersion version={v} offered={binary?.version} />,
    },
    { title: t('hosts.cpus'), dataIndex: 'cpus', width: 70, align: 'right', render: (v: number) => v || '—' },
    { title: t('hosts.memory'), dataIndex: 'memory_bytes', width: 100, align: 'right', render: (v: number) => <span style={{ whiteSpace: 'nowrap' }}>{fmtBytes(v)}</span> },
    {
      title: t('hosts.ips'),
      dataIndex: 'ips',
      render: (v: string[]) =>
        v?.length ? (
          <div className="omp-mono" style={{ fontSize: 12, whiteSpace: 'nowrap', wordBreak: 'normal' }}>
            {v.slice(0, 3).map((ip) => (
              <div key={ip}>{ip}</div>
            ))}
            {v.length > 3 && (
              <Tooltip title={v.slice(3).join(', ')}>
                <Typography.Text type="secondary">{t('hosts.more', { n: v.length - 3 })}</Typography.Text>
              </Tooltip>
            )}
          </div>
        ) : (
          '—'
        ),
    },
    { title: t('hosts.labels'), dataIndex: 'labels', render: (v: Host['labels']) => <LabelTags labels={v} /> },
    { title: t('hosts.groups'), dataIndex: 'groups', render: (v: string[]) => <GroupTags groups={v} /> },
    {
      title: t('common.actions'),
      key: 'actions',
      // kept in view when the table scrolls sideways
      fixed: 'right',
      width: (canWrite ? 190 : 90) + (canTerminal ? 32 : 0),
      render: (_: unknown, h) => (
        <Space size={0}>
          <Link to={`/hosts/${encodeURIComponent(h.id)}`} data-testid={`host-details-${h.hostname}`} style={{ padding: '0 7px' }}>
            {t('hosts.details')}
          </Link>
          {canTerminal && (
            <Tooltip title={h.status === 'online' ? t('term.openTip') : t('term.offlineTip')}>
              <Button
                type="link"
                size="small"
                icon={<CodeOutlined />}
                disabled={h.status !== 'online'}
                onClick={() => navigate(`/hosts/${encodeURIComponent(h.id)}/terminal`)}
                data-testid={`host-terminal-${h.hostname}`}
              />
            </Tooltip>
          )}
          {canWrite && (
            <>
              <Tooltip title={t('common.edit')}>
                <Button type="link" size="small" icon={<EditOutlined />} onClick={() => setEditing(h)} data-testid={`host-edit-${h.hostname}`} />
              </Tooltip>
              {h.maintenance?.enabled ? (
                <Popconfirm
                  title={t('maint.hostOffConfirm', { name: h.hostname })}
                  okText={t('maint.turnOff')}
                  cancelText={t('common.cancel')}
                  okButtonProps={{ 'data-testid': 'confirm-ok' }}
                  onConfirm={() => endMaintenance(h)}
                >
                  <Tooltip title={t('maint.turnOff')}>
                    <Button type="link" size="small" icon={<ToolOutlined />} style={{ color: '#fa8c16' }} data-testid={`host-maint-${h.hostname}`} />
                  </Tooltip>
                </Popconfirm>
              ) : (
                <Tooltip title={t('maint.turnOnHost')}>
                  <Button type="link" size="small" icon={<ToolOutlined />} onClick={() => setMaint(h)} data-testid={`host-maint-${h.hostname}`} />
                </Tooltip>
              )}
              <Popconfirm
                title={t('hosts.deleteConfirm', { name: h.hostname })}
                description={t('hosts.deleteHelp')}
                okText={t('common.delete')}
                cancelText={t('common.cancel')}
                okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
                onConfirm={() => remove(h)}
              >
                <Tooltip title={t('common.delete')}>
                  <Button type="link" size="small" danger icon={<DeleteOutlined />} data-testid={`host-delete-${h.hostname}`} />
                </Tooltip>
              </Popconfirm>
            </>
          )}
        </Space>
      ),
    },
  ];

  const filtered = filters.q || filters.status || filters.group || filters.label;

  return (
    <Card>
      <div style={{ display: 'flex', justifyContent: 'space-between', flexWrap: 'wrap', gap: 8, marginBottom: 12 }}>
        <Space wrap>
          <Input.Search
            allowClear
            placeholder={t('hosts.searchPlaceholder')}
            style={{ width: 240 }}
            value={draftQ}
            onChange={(e) => {
              setDraftQ(e.target.value);
              if (!e.target.value) apply({ q: '' });
            }}
            onSearch={(v) => apply({ q: v })}
            data-testid="hosts-search"
          />
          <Select
            allowClear
            placeholder={t('hosts.status')}
            style={{ width: 130 }}
            value={filters.status || undefined}
            onChange={(v) => apply({ status: (v ?? '') as Filters['status'] })}
            options={[
              { value: 'online', label: t('hosts.online') },
              { value: 'offline', label: t('hosts.offline') },
            ]}
            data-testid="hosts-status-filter"
          />
          <Select
            allowClear
            showSearch
            placeholder={t('hosts.group')}
            style={{ width: 160 }}
            value={filters.group || undefined}
            onChange={(v) => apply({ group: v ?? '' })}
            options={groups.map((g) => ({ value: g.name, label: `${g.name} (${g.hosts})` }))}
            data-testid="hosts-group-filter"
          />
          <Input
            allowClear
            placeholder={t('hosts.labelFilter')}
            style={{ width: 160 }}
            value={draftLabel}
            onChange={(e) => {
              setDraftLabel(e.target.value);
              if (!e.target.value) apply({ label: '' });
            }}
            onPressEnter={() => apply({ label: draftLabel })}
            data-testid="hosts-label-filter"
          />
        </Space>
        {/* pushed right also when it wraps below the filters */}
        <Space wrap style={{ marginLeft: 'auto' }}>
          <Space size={6}>
            <Switch size="small" checked={auto} onChange={setAutoStored} data-testid="hosts-autorefresh" />
            <span>{t('hosts.autoRefresh')}</span>
          </Space>
          <Tooltip title={t('common.refresh')}>
            <Button icon={<ReloadOutlined />} onClick={() => load()} data-testid="hosts-refresh" />
          </Tooltip>
          {canUpgrade && (
            <Button icon={<CloudUploadOutlined />} onClick={() => setUpgrading(true)} data-testid="hosts-upgrade">
              {picked.length ? t('upgrade.actionN', { n: picked.length }) : t('upgrade.action')}
            </Button>
          )}
          {canWrite && (
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setAdding(true)} data-testid="hosts-add">
              {t('hosts.add')}
            </Button>
          )}
        </Space>
      </div>
      <Table<Host>
        rowKey={(h) => String(h.id)}
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={data?.items ?? []}
        data-testid="hosts-table"
        onRow={(h) => rowTestId(`host-row-${h.hostname}`)}
        rowSelection={
          canUpgrade
            ? {
                selectedRowKeys: picked.map((h) => String(h.id)),
                preserveSelectedRowKeys: true,
                onChange: (keys, rows) => {
                  // rows of other pages come back undefined: keep what was picked there
                  const known = new Map(picked.map((h) => [String(h.id), h]));
                  rows.forEach((h) => h && known.set(String(h.id), h));
                  setPicked(keys.map((k) => known.get(String(k))).filter((h): h is Host => !!h));
                },
                getCheckboxProps: (h) => ({ 'data-testid': `host-select-${h.hostname}` }) as Record<string, unknown>,
              }
            : undefined
        }
        scroll={{ x: canUpgrade ? 1232 : 1200 }}
        locale={{
          emptyText: (
            <Empty
              image={Empty.PRESENTED_IMAGE_SIMPLE}
              description={filtered ? t('hosts.noMatch') : t('hosts.empty')}
            >
              {!filtered && canWrite && (
                <Button type="primary" icon={<PlusOutlined />} onClick={() => setAdding(true)} data-testid="hosts-add-empty">
                  {t('hosts.add')}
                </Button>
              )}
            </Empty>
          ),
        }}
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
      {adding && <AddHostModal onClose={() => { setAdding(false); load(true); }} />}
      {editing && (
        <EditHostModal
          host={editing}
          onClose={(h) => {
            setEditing(null);
            if (h) load(true);
          }}
        />
      )}
      {maint && (
        <MaintenanceModal
          host={maint}
          onClose={(done) => {
            setMaint(null);
            if (done) load(true);
          }}
        />
      )}
      {upgrading && (
        <UpgradeAgentsModal
          selected={picked}
          onClose={() => setUpgrading(false)}
          onStarted={(run) => {
            setUpgrading(false);
            setPicked([]);
            message.success(t('upgrade.started', { id: String(run.id) }));
            navigate(`/hosts/upgrades?run=${encodeURIComponent(String(run.id))}`);
          }}
        />
      )}
    </Card>
  );
}

// ---------------------------------------------------------------- add host / enrollment

interface EnrollValues {
  ttl_minutes: number;
  labels: string[];
  groups: string[];
}

function AddHostModal({ onClose }: { onClose: () => void }) {
  const t = useT();
  const [tab, setTab] = useState('new');
  const [listKey, setListKey] = useState(0);
  return (
    <Modal open title={t('enroll.title')} onCancel={onClose} width={860} mask={{ closable: false }} footer={
      <Button onClick={onClose} data-testid="enroll-close">
        {t('common.close')}
      </Button>
    } destroyOnHidden>
      <Tabs
        activeKey={tab}
        onChange={(k) => {
          setTab(k);
          // the list is fetched again each time it is shown
          if (k === 'tokens') setListKey((n) => n + 1);
        }}
        items={[
          { key: 'new', label: <span data-testid="enroll-tab-new">{t('enroll.tabNew')}</span>, children: <NewEnrollment /> },
          { key: 'tokens', label: <span data-testid="enroll-tab-tokens">{t('enroll.tabTokens')}</span>, children: <EnrollTokens key={listKey} /> },
          { key: 'ssh', label: <span data-testid="ssh-tab">{t('ssh.tab')}</span>, children: <SshPushTab /> },
          { key: 'import', label: <span data-testid="import-tab">{t('import.tab')}</span>, children: <ImportCsvTab /> },
        ]}
      />
    </Modal>
  );
}

function NewEnrollment() {
  const t = useT();
  const groups = useHostGroups();
  const [form] = Form.useForm<EnrollValues>();
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<EnrollTokenCreated | null>(null);

  const submit = async () => {
    let v: EnrollValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { ttl_minutes: v.ttl_minutes || 60 };
      const labels = parseLabels(v.labels).labels;
      if (Object.keys(labels).length) body.labels = labels;
      const g = (v.groups ?? []).map((x) => x.trim()).filter(Boolean);
      if (g.length) body.groups = g;
      setCreated(await api.post<EnrollTokenCreated>('/hosts/enroll-tokens', body));
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  return (
    <div>
      <Typography.Paragraph type="secondary">{t('enroll.intro')}</Typography.Paragraph>
      <Form form={form} layout="vertical" initialValues={{ ttl_minutes: 60, labels: [], groups: [] }}>
        <Form.Item name="ttl_minutes" label={t('enroll.ttl')} extra={t('enroll.ttlHelp')}>
          <InputNumber min={1} max={10080} precision={0} style={{ width: 160 }} data-testid="enroll-ttl" />
        </Form.Item>
        <Form.Item name="labels" label={t('hosts.labels')} extra={t('enroll.labelsHelp')} rules={[labelRule(t)]}>
          <Select mode="tags" open={false} suffixIcon={null} placeholder="env=prod" data-testid="enroll-labels" />
        </Form.Item>
        <Form.Item name="groups" label={t('hosts.groups')} extra={t('enroll.groupsHelp')}>
          <Select
            mode="tags"
            placeholder={t('hosts.groupsPlaceholder')}
            options={groups.map((g) => ({ value: g.name, label: g.name }))}
            data-testid="enroll-groups"
          />
        </Form.Item>
        <Button type="primary" loading={busy} onClick={submit} data-testid="enroll-create">
          {created ? t('enroll.createAnother') : t('enroll.create')}
        </Button>
      </Form>
      {created && (
        <div style={{ marginTop: 20 }} data-testid="enroll-result">
          <Alert
            type="warning"
            showIcon
            title={t('enroll.once')}
            description={t('enroll.expires', { time: fmtTime(created.expires_at) })}
            style={{ marginBottom: 12 }}
          />
          <Typography.Text type="secondary">{t('enroll.runAsRoot')}</Typography.Text>
          <div className="omp-code" style={{ marginTop: 6 }}>
            <Typography.Text
              className="omp-mono"
              data-testid="enroll-command"
              copyable={{ text: created.command, tooltips: [t('common.copy'), t('common.copied')] }}
            >
              {created.command}
            </Typography.Text>
          </div>
        </div>
      )}
    </div>
  );
}

function EnrollTokens() {
  const t = useT();
  const { message } = AntApp.useApp();
  const [items, setItems] = useState<EnrollToken[]>([]);
  const [loading, setLoading] = useState(false);
  const load = useCallback(() => {
    setLoading(true);
    api
      .get<{ items: EnrollToken[] }>('/hosts/enroll-tokens')
      .then((r) => setItems(r.items ?? []))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, []);
  useEffect(load, [load]);
  const revoke = async (tok: EnrollToken) => {
    try {
      await api.del(`/hosts/enroll-tokens/${encodeURIComponent(tok.id)}`);
      message.success(t('enroll.revoked'));
      load();
    } catch {
      // reported
    }
  };
  const nowMs = useMemo(() => Date.now(), [items]); // eslint-disable-line react-hooks/exhaustive-deps
  const columns: ColumnsType<EnrollToken> = [
    { title: t('enroll.createdBy'), dataIndex: 'created_by', render: (v: string) => v || '—' },
    { title: t('enroll.createdAt'), dataIndex: 'created_at', render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    {
      title: t('enroll.state'),
      key: 'state',
      render: (_: unknown, tok) =>
        tok.used_at ? (
          <Tooltip title={fmtTime(tok.used_at)}>
            <Tag color="blue">
              {tok.used_by_host !== null && tok.used_by_host !== undefined && tok.used_by_host !== '' ? (
                <Link to={`/hosts/${encodeURIComponent(tok.used_by_host)}`}>{t('enroll.usedBy', { host: String(tok.used_by_host) })}</Link>
              ) : (
                t('enroll.used')
              )}
            </Tag>
          </Tooltip>
        ) : dayjs(tok.expires_at).valueOf() < nowMs ? (
          <Tag color="red">{t('enroll.expired')}</Tag>
        ) : (
          <Tooltip title={`${t('enroll.expiresAt')}: ${fmtTime(tok.expires_at)}`}>
            <Tag color="green">{t('enroll.valid')}</Tag>
          </Tooltip>
        ),
    },
    { title: t('enroll.expiresAt'), dataIndex: 'expires_at', render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    {
      title: `${t('hosts.labels')} / ${t('hosts.groups')}`,
      key: 'lg',
      render: (_: unknown, tok) => (
        <Space size={[4, 4]} wrap>
          {Object.keys(tok.labels ?? {}).length ? <LabelTags labels={tok.labels} /> : null}
          {tok.groups?.length ? <GroupTags groups={tok.groups} /> : null}
          {!Object.keys(tok.labels ?? {}).length && !tok.groups?.length ? '—' : null}
        </Space>
      ),
    },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 90,
      render: (_: unknown, tok) => (
        <Popconfirm
          title={t('enroll.revokeConfirm')}
          okText={t('tokens.revoke')}
          cancelText={t('common.cancel')}
          okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
          onConfirm={() => revoke(tok)}
        >
          <Button type="link" danger size="small" data-testid={`enroll-revoke-${tok.id}`}>
            {t('tokens.revoke')}
          </Button>
        </Popconfirm>
      ),
    },
  ];
  return (
    <div>
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', marginBottom: 8 }}>
        <Typography.Text type="secondary">{t('enroll.tokensIntro')}</Typography.Text>
        <Tooltip title={t('common.refresh')}>
          <Button size="small" icon={<ReloadOutlined />} onClick={load} data-testid="enroll-tokens-refresh" />
        </Tooltip>
      </div>
      <Table<EnrollToken>
        rowKey={(r) => String(r.id)}
        size="small"
        loading={loading}
        columns={columns}
        dataSource={items}
        pagination={items.length > 10 ? { pageSize: 10 } : false}
        onRow={(r) => rowTestId(`enroll-token-row-${r.id}`)}
        data-testid="enroll-tokens-table"
      />
    </div>
  );
}
