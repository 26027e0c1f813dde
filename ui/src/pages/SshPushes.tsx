// Hosts → "SSH push" tab (route /hosts/ssh): the recent pushes (GET /hosts/ssh-push, kept in
// the server's memory; a drawer shows the steps of one, live while it runs) and the trusted SSH
// host keys (GET /ssh/known-hosts) with "Forget" for a host that was reinstalled.
import { useCallback, useEffect, useState } from 'react';
import { Alert, App as AntApp, Button, Card, Drawer, Empty, Popconfirm, Space, Table, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { DeleteOutlined, ReloadOutlined } from '@ant-design/icons';
import { api, type KnownHost, type PushJob, type PushState } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';
import { currentStep, fmtPushTime, HostLink, PushProgress, PushStateTag, pushTarget, stepName } from '../components/sshPush';

function rowTestId(id: string): React.HTMLAttributes<HTMLElement> {
  return { 'data-testid': id } as React.HTMLAttributes<HTMLElement>;
}

export default function SshPage() {
  const can = useCan();
  return (
    <Space orientation="vertical" size={16} style={{ width: '100%' }}>
      {can('hosts:write') && <RecentPushes />}
      <KnownHosts />
    </Space>
  );
}

function RecentPushes() {
  const t = useT();
  const [items, setItems] = useState<PushJob[]>([]);
  const [loading, setLoading] = useState(false);
  const [open, setOpen] = useState<PushJob | null>(null);
  const load = useCallback((quiet = false) => {
    if (!quiet) setLoading(true);
    api
      .get<{ items: PushJob[] }>('/hosts/ssh-push', undefined, quiet ? { silent: true } : undefined)
      .then((r) => setItems(r.items ?? []))
      .catch(() => undefined)
      .finally(() => {
        if (!quiet) setLoading(false);
      });
  }, []);
  useEffect(() => load(), [load]);
  // follow the running ones
  const anyRunning = items.some((j) => j.state === 'running');
  useEffect(() => {
    if (!anyRunning) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') load(true);
    }, 2000);
    return () => window.clearInterval(id);
  }, [anyRunning, load]);

  const columns: ColumnsType<PushJob> = [
    { title: '#', dataIndex: 'id', width: 60 },
    { title: t('push.started'), dataIndex: 'created_at', width: 170, render: (v: PushJob['created_at']) => <span style={{ whiteSpace: 'nowrap' }}>{fmtPushTime(v)}</span> },
    { title: t('push.by'), dataIndex: 'created_by', width: 110, render: (v: string) => v || '—' },
    { title: t('push.target'), key: 'target', render: (_: unknown, j) => <span className="omp-mono" style={{ whiteSpace: 'nowrap' }}>{pushTarget(j)}</span> },
    { title: t('push.stateCol'), dataIndex: 'state', width: 110, render: (v: PushState) => <PushStateTag state={v} testId="push-row-state" /> },
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
              <Typography.Text
                type={s.state === 'failed' ? 'danger' : 'secondary'}
                style={{ fontSize: 12, maxWidth: 380 }}
                ellipsis={{ tooltip: s.detail }}
              >
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
      width: 110,
      render: (v: PushJob['host_id']) => (v !== null && v !== undefined ? <HostLink id={v} /> : '—'),
    },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 90,
      render: (_: unknown, j) => (
        <Button type="link" size="small" onClick={() => setOpen(j)} data-testid={`push-open-${j.id}`}>
          {t('push.steps')}
        </Button>
      ),
    },
  ];

  return (
    <Card
      title={t('push.recent')}
      extra={
        <Tooltip title={t('common.refresh')}>
          <Button size="small" icon={<ReloadOutlined />} onClick={() => load()} data-testid="pushes-refresh" />
        </Tooltip>
      }
    >
      <Typography.Paragraph type="secondary">{t('push.recentIntro')}</Typography.Paragraph>
      <Table<PushJob>
        rowKey={(j) => String(j.id)}
        size="small"
        loading={loading}
        columns={columns}
        dataSource={items}
        scroll={{ x: 900 }}
        pagination={items.length > 20 ? { pageSize: 20, showSizeChanger: false } : false}
        onRow={(j) => rowTestId(`push-row-${j.id}`)}
        data-testid="pushes-table"
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('push.none')} /> }}
      />
      <Drawer
        open={!!open}
        size={600}
        title={open ? t('push.drawerTitle', { id: open.id }) : ''}
        onClose={() => {
          setOpen(null);
          load(true);
        }}
        destroyOnHidden
        data-testid="push-drawer"
      >
        {open && <PushProgress key={open.id} id={open.id} initial={open} />}
      </Drawer>
    </Card>
  );
}

function KnownHosts() {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const canWrite = can('hosts:write');
  const [items, setItems] = useState<KnownHost[]>([]);
  const [loading, setLoading] = useState(false);
  const load = useCallback(() => {
    setLoading(true);
    api
      .get<{ items: KnownHost[] }>('/ssh/known-hosts')
      .then((r) => setItems(r.items ?? []))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, []);
  useEffect(load, [load]);

  const forget = async (k: KnownHost) => {
    try {
      await api.del(`/ssh/known-hosts/${encodeURIComponent(k.target)}`);
      message.success(t('known.forgotten', { target: k.target }));
      load();
    } catch {
      // reported
    }
  };

  const columns: ColumnsType<KnownHost> = [
    { title: t('known.target'), dataIndex: 'target', render: (v: string) => <span className="omp-mono">{v}</span> },
    {
      title: t('known.fingerprint'),
      dataIndex: 'fingerprint',
      render: (v: string) => (
        <Typography.Text className="omp-mono" style={{ fontSize: 12 }} copyable={{ tooltips: [t('common.copy'), t('common.copied')] }}>
          {v}
        </Typography.Text>
      ),
    },
    { title: t('known.firstSeen'), dataIndex: 'first_seen', width: 170, render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    { title: t('known.lastSeen'), dataIndex: 'last_seen', width: 170, render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    ...(canWrite
      ? [
          {
            title: t('common.actions'),
            key: 'actions',
            width: 100,
            render: (_: unknown, k: KnownHost) => (
              <Popconfirm
                title={t('known.forgetConfirm', { target: k.target })}
                description={<div style={{ maxWidth: 340 }}>{t('known.forgetHelp')}</div>}
                okText={t('known.forget')}
                cancelText={t('common.cancel')}
                okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
                onConfirm={() => forget(k)}
              >
                <Button type="link" danger size="small" icon={<DeleteOutlined />} data-testid={`known-host-forget-${k.target}`}>
                  {t('known.forget')}
                </Button>
              </Popconfirm>
            ),
          },
        ]
      : []),
  ];

  return (
    <Card
      title={t('known.title')}
      extra={
        <Tooltip title={t('common.refresh')}>
          <Button size="small" icon={<ReloadOutlined />} onClick={load} data-testid="known-hosts-refresh" />
        </Tooltip>
      }
    >
      <Alert type="info" showIcon style={{ marginBottom: 12 }} title={t('known.intro')} />
      <Table<KnownHost>
        rowKey={(k) => k.target}
        size="small"
        loading={loading}
        columns={columns}
        dataSource={items}
        pagination={items.length > 20 ? { pageSize: 20, showSizeChanger: false } : false}
        onRow={(k) => rowTestId(`known-host-row-${k.target}`)}
        data-testid="known-hosts-table"
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t('known.none')} /> }}
      />
    </Card>
  );
}
