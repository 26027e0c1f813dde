// Pieces shared by the Hosts pages: formatting (bytes, relative time, durations), status and
// label tags, the k=v label helpers and the dialogs to edit a host and to set maintenance.
import { useEffect, useState } from 'react';
import { App as AntApp, DatePicker, Form, Input, Modal, Select, Space, Tag, Tooltip, Typography } from 'antd';
import { ToolOutlined } from '@ant-design/icons';
import dayjs, { type Dayjs } from 'dayjs';
import { api, type Host, type HostGroup, type JobHostState, type JobState, type Maintenance } from '../api';
import { useT, type TFunc } from '../i18n';
import { fmtTime } from '../session';

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** "12 s ago", "5 min ago", … from an RFC 3339 time. */
export function fmtAgo(t: TFunc, v: string | null | undefined, now = Date.now()): string {
  if (!v) return t('common.never');
  const ms = now - dayjs(v).valueOf();
  if (!Number.isFinite(ms)) return v;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 5) return t('time.justNow');
  if (s < 60) return t('time.secondsAgo', { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('time.minutesAgo', { n: m });
  const h = Math.floor(m / 60);
  if (h < 48) return t('time.hoursAgo', { n: h });
  return t('time.daysAgo', { n: Math.floor(h / 24) });
}

export function fmtDuration(t: TFunc, secs: number | null | undefined): string {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return '—';
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  if (d) return t('time.dh', { d, h });
  if (h) return t('time.hm', { h, m });
  if (m) return t('time.m', { m });
  return t('time.s', { s: Math.floor(secs) });
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

// ---------------------------------------------------------------- labels

export function labelsToList(labels: Record<string, string> | null | undefined): string[] {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`);
}

/** Parses "k=v" strings; returns null (and the first bad entry) when one has no key. */
export function parseLabels(list: string[] | null | undefined): { labels: Record<string, string>; bad: string | null } {
  const labels: Record<string, string> = {};
  for (const raw of list ?? []) {
    const s = raw.trim();
    if (!s) continue;
    const i = s.indexOf('=');
    const k = (i < 0 ? s : s.slice(0, i)).trim();
    const v = i < 0 ? '' : s.slice(i + 1).trim();
    if (!k || i < 0) return { labels, bad: s };
    labels[k] = v;
  }
  return { labels, bad: null };
}

/** Form rule for a tags field of k=v labels. */
export function labelRule(t: TFunc) {
  return {
    validator(_: unknown, value: string[] | undefined) {
      const { bad } = parseLabels(value);
      return bad === null ? Promise.resolve() : Promise.reject(new Error(t('hosts.badLabel', { v: bad })));
    },
  };
}

export function LabelTags({ labels }: { labels: Record<string, string> | null | undefined }) {
  const list = labelsToList(labels);
  if (!list.length) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <Space size={[4, 4]} wrap>
      {list.map((l) => (
        <Tag key={l} className="omp-mono" style={{ marginInlineEnd: 0 }}>
          {l}
        </Tag>
      ))}
    </Space>
  );
}

export function GroupTags({ groups }: { groups: string[] | null | undefined }) {
  if (!groups?.length) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <Space size={[4, 4]} wrap>
      {groups.map((g) => (
        <Tag key={g} color="geekblue" style={{ marginInlineEnd: 0 }}>
          {g}
        </Tag>
      ))}
    </Space>
  );
}

// ---------------------------------------------------------------- status tags

export function HostStatusTag({ host }: { host: Pick<Host, 'status' | 'last_seen_at'> }) {
  const t = useT();
  const online = host.status === 'online';
  return (
    <Tooltip title={host.last_seen_at ? `${t('hosts.lastSeen')}: ${fmtTime(host.last_seen_at)}` : undefined}>
      <Tag color={online ? 'green' : 'default'} data-testid="host-status" data-status={host.status}>
        {online ? t('hosts.online') : t('hosts.offline')}
      </Tag>
    </Tooltip>
  );
}

export function MaintenanceTag({ m }: { m: Maintenance | null | undefined }) {
  const t = useT();
  if (!m?.enabled) return null;
  const tip = [
    m.reason ? `${t('maint.reason')}: ${m.reason}` : null,
    m.by ? `${t('maint.by')}: ${m.by}` : null,
    m.since ? `${t('maint.since')}: ${fmtTime(m.since)}` : null,
    `${t('maint.until')}: ${m.until ? fmtTime(m.until) : t('maint.untilOff')}`,
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <Tooltip title={tip}>
      <Tag color="orange" icon={<ToolOutlined />} data-testid="host-maintenance-tag">
        {t('maint.tag')}
      </Tag>
    </Tooltip>
  );
}

export function JobStateTag({ state }: { state: JobState }) {
  const t = useT();
  const color = state === 'running' ? 'processing' : state === 'done' ? 'success' : 'default';
  return (
    <Tag color={color} data-testid="job-state" data-state={state}>
      {t(`exec.state.${state}`)}
    </Tag>
  );
}

const HOST_STATE_COLOR: Record<JobHostState, string> = {
  pending: 'default',
  running: 'processing',
  ok: 'success',
  failed: 'error',
  timeout: 'warning',
  cancelled: 'default',
  offline: 'default',
  error: 'error',
};

export function HostJobStateTag({ state }: { state: JobHostState }) {
  const t = useT();
  return (
    <Tag color={HOST_STATE_COLOR[state] ?? 'default'} data-testid="job-host-state" data-state={state}>
      {t(`exec.hostState.${state}`)}
    </Tag>
  );
}

// ---------------------------------------------------------------- dialogs

export function useHostGroups(): HostGroup[] {
  const [groups, setGroups] = useState<HostGroup[]>([]);
  useEffect(() => {
    api
      .get<{ items: HostGroup[] }>('/host-groups', undefined, { silent: true })
      .then((r) => setGroups(r.items ?? []))
      .catch(() => undefined);
  }, []);
  return groups;
}

/** Labels and groups of one host; PUT /hosts/{id}. */
export function EditHostModal({ host, onClose }: { host: Host; onClose: (changed: Host | null) => void }) {
  const t = useT();
  const { message } = AntApp.useApp();
  const groups = useHostGroups();
  const [form] = Form.useForm<{ labels: string[]; groups: string[] }>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    let v: { labels: string[]; groups: string[] };
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      const h = await api.put<Host>(`/hosts/${encodeURIComponent(host.id)}`, {
        labels: parseLabels(v.labels).labels,
        groups: (v.groups ?? []).map((g) => g.trim()).filter(Boolean),
      });
      message.success(t('hosts.updated'));
      onClose(h);
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={t('hosts.editTitle', { name: host.hostname })}
      onCancel={() => onClose(null)}
      onOk={submit}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'host-form-submit' }}
      destroyOnHidden
    >
      <Form
        form={form}
        layout="vertical"
        initialValues={{ labels: labelsToList(host.labels), groups: host.groups ?? [] }}
      >
        <Form.Item name="labels" label={t('hosts.labels')} extra={t('hosts.labelsHelp')} rules={[labelRule(t)]}>
          <Select mode="tags" open={false} suffixIcon={null} placeholder="env=prod" data-testid="host-form-labels" />
        </Form.Item>
        <Form.Item name="groups" label={t('hosts.groups')} extra={t('hosts.groupsHelp')}>
          <Select
            mode="tags"
            placeholder={t('hosts.groupsPlaceholder')}
            options={groups.map((g) => ({ value: g.name, label: g.name }))}
            data-testid="host-form-groups"
          />
        </Form.Item>
      </Form>
    </Modal>
  );
}

interface MaintValues {
  reason: string;
  until?: Dayjs | null;
}

/**
 * Turn maintenance on, for one host (PUT /hosts/{id}/maintenance) or globally
 * (PUT /maintenance with enabled: true).
 */
export function MaintenanceModal({
  host,
  onClose,
}: {
  /** null = global maintenance */
  host: Host | null;
  onClose: (done: boolean) => void;
}) {
  const t = useT();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<MaintValues>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    let v: MaintValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { reason: v.reason.trim() };
      if (v.until) body.until = v.until.toISOString();
      if (host) await api.put(`/hosts/${encodeURIComponent(host.id)}/maintenance`, body);
      else await api.put('/maintenance', { enabled: true, ...body });
      message.success(t('maint.onDone'));
      onClose(true);
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={host ? t('maint.hostTitle', { name: host.hostname }) : t('maint.globalTitle')}
      onCancel={() => onClose(false)}
      onOk={submit}
      okText={t('maint.turnOn')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'maint-form-submit' }}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{host ? t('maint.hostHelp') : t('maint.globalHelp')}</Typography.Paragraph>
      <Form form={form} layout="vertical">
        <Form.Item name="reason" label={t('maint.reason')} rules={[{ required: true, whitespace: true, message: t('maint.reasonRequired') }]}>
          <Input maxLength={500} placeholder={t('maint.reasonPlaceholder')} data-testid="maint-form-reason" />
        </Form.Item>
        <Form.Item name="until" label={t('maint.until')} extra={t('maint.untilHelp')}>
          <DatePicker
            showTime={{ format: 'HH:mm' }}
            format="YYYY-MM-DD HH:mm"
            disabledDate={(d) => d.isBefore(dayjs().startOf('day'))}
            style={{ width: 240 }}
            data-testid="maint-form-until"
          />
        </Form.Item>
      </Form>
    </Modal>
  );
}
