// One host: its inventory (every Host field, disks with usage bars), edit / maintenance /
// delete, the "Metrics" card (charts, metrics:read; a lazy chunk with ECharts), a "Run
// command" card that runs on this host only, and the "Files" card (upload / download,
// files:transfer) on the Overview tab; the top processes on the Processes tab (?tab=processes).
// The agent version is tagged against the binary the server offers, with "Upgrade agent"
// (hosts:upgrade) when they differ.
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import {
  App as AntApp,
  Button,
  Card,
  Col,
  Descriptions,
  Popconfirm,
  Progress,
  Result,
  Row,
  Space,
  Spin,
  Table,
  Tabs,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { ArrowLeftOutlined, CloudUploadOutlined, CodeOutlined, DeleteOutlined, EditOutlined, ReloadOutlined, ToolOutlined } from '@ant-design/icons';
import { useNavigate, useParams, useSearchParams } from 'react-router-dom';
import { api, ApiError, type Disk, type Host, type Job } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';
import {
  EditHostModal,
  fmtAgo,
  fmtBytes,
  fmtDuration,
  GroupTags,
  HostStatusTag,
  LabelTags,
  MaintenanceModal,
  MaintenanceTag,
} from '../components/hostBits';
import { ExecForm, JobView } from '../components/exec';
import { FilesCard } from '../components/files';
import { AgentVersion, UpgradeAgentsModal, useAgentBinary } from '../components/agentUpgrade';

const HostMetricsCard = lazy(() => import('../components/hostMetrics'));
const HostProcesses = lazy(() => import('../components/hostProcesses'));

export default function HostDetailPage() {
  const t = useT();
  const can = useCan();
  const navigate = useNavigate();
  const { message } = AntApp.useApp();
  const { id = '' } = useParams();
  const [params, setParams] = useSearchParams();
  const tab = params.get('tab') === 'processes' ? 'processes' : 'overview';
  const [host, setHost] = useState<Host | null>(null);
  const [missing, setMissing] = useState(false);
  const [editing, setEditing] = useState(false);
  const [maint, setMaint] = useState(false);
  const [job, setJob] = useState<Job | null>(null);
  const canWrite = can('hosts:write');
  const { binary } = useAgentBinary();
  const [upgrading, setUpgrading] = useState(false);

  const load = useCallback(
    (quiet = false) => {
      api
        .get<Host>(`/hosts/${encodeURIComponent(id)}`, undefined, quiet ? { silent: true } : undefined)
        .then((h) => {
          setHost(h);
          setMissing(false);
        })
        .catch((e) => {
          if (e instanceof ApiError && e.status === 404) setMissing(true);
        });
    },
    [id],
  );
  useEffect(() => load(), [load]);
  useEffect(() => {
    const iv = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, 5000);
    return () => window.clearInterval(iv);
  }, [load]);

  const back = (
    <Button icon={<ArrowLeftOutlined />} onClick={() => navigate('/hosts')} data-testid="host-back">
      {t('hosts.back')}
    </Button>
  );

  if (missing) {
    return <Result status="404" title={t('hosts.notFound')} extra={back} data-testid="host-missing" />;
  }
  if (!host) {
    return (
      <div style={{ padding: 80, textAlign: 'center' }}>
        <Spin />
      </div>
    );
  }

  const endMaintenance = async () => {
    try {
      setHost(await api.del<Host>(`/hosts/${encodeURIComponent(host.id)}/maintenance`));
      message.success(t('maint.offDone'));
      load(true);
    } catch {
      // reported
    }
  };
  const remove = async () => {
    try {
      await api.del(`/hosts/${encodeURIComponent(host.id)}`);
      message.success(t('hosts.deleted', { name: host.hostname }));
      navigate('/hosts');
    } catch {
      // reported
    }
  };

  const diskColumns: ColumnsType<Disk> = [
    { title: t('hosts.mount'), dataIndex: 'mount', render: (v: string) => <span className="omp-mono">{v}</span> },
    { title: t('hosts.fs'), dataIndex: 'fs', width: 110 },
    { title: t('hosts.size'), dataIndex: 'size_bytes', width: 110, align: 'right', render: (v: number) => fmtBytes(v) },
    {
      title: t('hosts.used'),
      key: 'used',
      width: 110,
      align: 'right',
      render: (_: unknown, d) => fmtBytes(Math.max(0, d.size_bytes - d.avail_bytes)),
    },
    { title: t('hosts.avail'), dataIndex: 'avail_bytes', width: 110, align: 'right', render: (v: number) => fmtBytes(v) },
    {
      title: t('hosts.usage'),
      key: 'usage',
      width: 220,
      render: (_: unknown, d) => {
        const pct = d.size_bytes > 0 ? Math.round(((d.size_bytes - d.avail_bytes) / d.size_bytes) * 1000) / 10 : 0;
        return (
          <Progress
            percent={pct}
            size="small"
            status={pct >= 90 ? 'exception' : 'normal'}
            strokeColor={pct >= 90 ? undefined : pct >= 75 ? '#fa8c16' : undefined}
            format={(p) => `${p}%`}
          />
        );
      },
    },
  ];

  return (
    <div data-testid="host-detail">
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', gap: 12, flexWrap: 'wrap', marginBottom: 16 }}>
        <Space align="center" wrap>
          {back}
          <Typography.Title level={3} style={{ margin: 0 }} data-testid="host-detail-name">
            {host.hostname}
          </Typography.Title>
          <HostStatusTag host={host} />
          <MaintenanceTag m={host.maintenance} />
        </Space>
        <Space wrap>
          {can('terminal:open') && (
            <Tooltip title={host.status === 'online' ? t('term.openTip') : t('term.offlineTip')}>
              <Button
                type="primary"
                icon={<CodeOutlined />}
                disabled={host.status !== 'online'}
                onClick={() => navigate(`/hosts/${encodeURIComponent(host.id)}/terminal`)}
                data-testid="terminal-open"
              >
                {t('term.open')}
              </Button>
            </Tooltip>
          )}
          {can('hosts:upgrade') && binary && host.agent_version !== binary.version && (
            <Tooltip title={host.status === 'online' ? t('upgrade.hostTip', { version: binary.version }) : t('upgrade.hostOffline')}>
              <Button
                icon={<CloudUploadOutlined />}
                disabled={host.status !== 'online'}
                onClick={() => setUpgrading(true)}
                data-testid="host-upgrade"
              >
                {t('upgrade.hostAction')}
              </Button>
            </Tooltip>
          )}
          <Button icon={<ReloadOutlined />} onClick={() => load()} data-testid="host-refresh">
            {t('common.refresh')}
          </Button>
          {canWrite && (
            <>
              <Button icon={<EditOutlined />} onClick={() => setEditing(true)} data-testid="host-edit">
                {t('hosts.editLabels')}
              </Button>
              {host.maintenance?.enabled ? (
                <Popconfirm
                  title={t('maint.hostOffConfirm', { name: host.hostname })}
                  okText={t('maint.turnOff')}
                  cancelText={t('common.cancel')}
                  okButtonProps={{ 'data-testid': 'confirm-ok' }}
                  onConfirm={endMaintenance}
                >
                  <Button icon={<ToolOutlined />} data-testid="host-maint">
                    {t('maint.turnOff')}
                  </Button>
                </Popconfirm>
              ) : (
                <Button icon={<ToolOutlined />} onClick={() => setMaint(true)} data-testid="host-maint">
                  {t('maint.turnOnHost')}
                </Button>
              )}
              <Popconfirm
                title={t('hosts.deleteConfirm', { name: host.hostname })}
                description={t('hosts.deleteHelp')}
                okText={t('common.delete')}
                cancelText={t('common.cancel')}
                okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
                onConfirm={remove}
              >
                <Button danger icon={<DeleteOutlined />} data-testid="host-delete">
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            </>
          )}
        </Space>
      </div>
      <Tabs
        activeKey={tab}
        onChange={(k) => {
          const next = new URLSearchParams(params);
          if (k === 'processes') next.set('tab', 'processes');
          else next.delete('tab');
          setParams(next, { replace: true });
        }}
        items={[
          { key: 'overview', label: <span data-testid="host-tab-overview">{t('hosts.tabOverview')}</span> },
          { key: 'processes', label: <span data-testid="host-tab-processes">{t('procs.title')}</span> },
        ]}
        style={{ marginBottom: 0 }}
      />
      {tab === 'processes' ? (
        <Suspense fallback={<Card title={t('procs.title')} loading />}>
          <HostProcesses host={host} />
        </Suspense>
      ) : (
        <Row gutter={[16, 16]}>
          <Col xs={24}>
            <Card title={t('hosts.inventory')}>
              <Descriptions size="small" column={{ xs: 1, md: 2, xl: 3 }} data-testid="host-inventory">
                <Descriptions.Item label={t('hosts.hostname')}>{host.hostname}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.id')}>
                  <Typography.Text className="omp-mono" copyable={{ tooltips: [t('common.copy'), t('common.copied')] }}>
                    {String(host.id)}
                  </Typography.Text>
                </Descriptions.Item>
                {host.machine_id ? (
                  <Descriptions.Item label={t('hosts.machineId')}>
                    <span className="omp-mono">{host.machine_id}</span>
                  </Descriptions.Item>
                ) : null}
                <Descriptions.Item label={t('hosts.status')}>
                  <Space size={4}>
                    <HostStatusTag host={host} />
                    <Typography.Text type="secondary">{fmtAgo(t, host.last_seen_at)}</Typography.Text>
                  </Space>
                </Descriptions.Item>
                <Descriptions.Item label={t('hosts.lastSeen')}>{fmtTime(host.last_seen_at)}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.enrolledAt')}>{fmtTime(host.enrolled_at)}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.agentVersion')}>
                  <AgentVersion version={host.agent_version} offered={binary?.version} />
                </Descriptions.Item>
                <Descriptions.Item label={t('hosts.os')}>{host.os || '—'}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.kernel')}>{host.kernel || '—'}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.arch')}>{host.arch || '—'}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.cpus')}>{host.cpus || '—'}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.memory')}>{fmtBytes(host.memory_bytes)}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.uptime')}>{fmtDuration(t, host.uptime_secs)}</Descriptions.Item>
                <Descriptions.Item label={t('hosts.ips')} span={{ xs: 1, md: 2, xl: 3 }}>
                  {host.ips?.length ? <span className="omp-mono">{host.ips.join(', ')}</span> : '—'}
                </Descriptions.Item>
                <Descriptions.Item label={t('hosts.labels')}>
                  <LabelTags labels={host.labels} />
                </Descriptions.Item>
                <Descriptions.Item label={t('hosts.groups')}>
                  <GroupTags groups={host.groups} />
                </Descriptions.Item>
                <Descriptions.Item label={t('maint.tag')}>
                  {host.maintenance?.enabled ? (
                    <span data-testid="host-maintenance-info">
                      {host.maintenance.reason ? <strong>{host.maintenance.reason}</strong> : null}
                      {host.maintenance.reason ? ' — ' : null}
                      {t('maint.byWhen', { by: host.maintenance.by || '—', since: fmtTime(host.maintenance.since) })}
                      {' · '}
                      {host.maintenance.until ? t('maint.untilTime', { until: fmtTime(host.maintenance.until) }) : t('maint.untilOff')}
                    </span>
                  ) : (
                    <Typography.Text type="secondary">{t('maint.off')}</Typography.Text>
                  )}
                </Descriptions.Item>
              </Descriptions>
            </Card>
          </Col>
          {can('metrics:read') && (
            <Col xs={24}>
              <Suspense fallback={<Card title={t('metrics.title')} loading />}>
                <HostMetricsCard host={host} />
              </Suspense>
            </Col>
          )}
          <Col xs={24}>
            <Card title={t('hosts.disks')}>
              <Table<Disk>
                rowKey={(d) => `${d.mount}|${d.fs}`}
                size="small"
                columns={diskColumns}
                dataSource={host.disks ?? []}
                pagination={false}
                data-testid="host-disks"
              />
            </Card>
          </Col>
          {can('exec:run') && (
            <Col xs={24}>
              <Card title={t('hosts.runCommand')} data-testid="host-exec">
                {host.status !== 'online' && (
                  <Typography.Paragraph type="warning">{t('hosts.offlineExec')}</Typography.Paragraph>
                )}
                <ExecForm host={host} onStarted={setJob} />
              </Card>
            </Col>
          )}
          {job && (
            <Col xs={24}>
              <JobView key={String(job.id)} jobId={job.id} initial={job} />
            </Col>
          )}
          {can('files:transfer') && (
            <Col xs={24}>
              <FilesCard host={host} />
            </Col>
          )}
        </Row>
      )}
      {editing && (
        <EditHostModal
          host={host}
          onClose={(h) => {
            setEditing(false);
            if (h) setHost(h);
          }}
        />
      )}
      {upgrading && (
        <UpgradeAgentsModal
          selected={[host]}
          selectedLabel={t('upgrade.scopeThisHost', { name: host.hostname })}
          onClose={() => setUpgrading(false)}
          onStarted={(run) => {
            setUpgrading(false);
            message.success(t('upgrade.started', { id: String(run.id) }));
            navigate(`/hosts/upgrades?run=${encodeURIComponent(String(run.id))}`);
          }}
        />
      )}
      {maint && (
        <MaintenanceModal
          host={host}
          onClose={(done) => {
            setMaint(false);
            if (done) load(true);
          }}
        />
      )}
    </div>
  );
}
