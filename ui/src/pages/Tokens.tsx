// API tokens: list the user's own tokens (or everyone's with tokens:admin), create one and
// show its secret exactly once, revoke.
import { useCallback, useEffect, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Form,
  Input,
  InputNumber,
  Modal,
  Popconfirm,
  Space,
  Switch,
  Table,
  Tag,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { PlusOutlined, ReloadOutlined } from '@ant-design/icons';
import dayjs from 'dayjs';
import { api, type Token } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan } from '../session';

export default function TokensPage() {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const isAdmin = can('tokens:admin');
  const [all, setAll] = useState(false);
  const [items, setItems] = useState<Token[]>([]);
  const [loading, setLoading] = useState(false);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Token | null>(null);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<{ items: Token[] }>('/tokens', all ? { all: true } : undefined)
      .then((r) => setItems(r.items))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, [all]);
  useEffect(load, [load]);

  const revoke = async (tok: Token) => {
    try {
      await api.del(`/tokens/${encodeURIComponent(tok.id)}`);
      message.success(t('tokens.revoked'));
      load();
    } catch {
      // reported
    }
  };

  const columns: ColumnsType<Token> = [
    { title: t('tokens.name'), dataIndex: 'name', render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
    { title: t('tokens.prefix'), dataIndex: 'prefix', render: (v: string) => <span className="omp-mono">{v}…</span> },
  ];
  if (all) columns.push({ title: t('tokens.user'), dataIndex: 'user' });
  columns.push(
    { title: t('tokens.createdAt'), dataIndex: 'created_at', render: (v: string) => fmtTime(v) },
    {
      title: t('tokens.expiresAt'),
      dataIndex: 'expires_at',
      render: (v: string | null) =>
        v ? (
          <Space>
            {fmtTime(v)}
            {dayjs(v).isBefore(dayjs()) && <Tag color="red">{t('tokens.expired')}</Tag>}
          </Space>
        ) : (
          <Typography.Text type="secondary">{t('tokens.noExpiry')}</Typography.Text>
        ),
    },
    { title: t('tokens.lastUsed'), dataIndex: 'last_used_at', render: (v: string | null) => (v ? fmtTime(v) : t('common.never')) },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 110,
      render: (_: unknown, tok: Token) => (
        <Popconfirm
          title={t('tokens.revokeConfirm', { name: tok.name })}
          okText={t('tokens.revoke')}
          cancelText={t('common.cancel')}
          okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
          onConfirm={() => revoke(tok)}
        >
          <Button type="link" danger size="small" data-testid={`token-revoke-${tok.name}`}>
            {t('tokens.revoke')}
          </Button>
        </Popconfirm>
      ),
    },
  );

  return (
    <div data-testid="tokens-page">
      <Typography.Title level={3} className="omp-page-title">
        {t('tokens.title')}
      </Typography.Title>
      <Card>
        <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center', gap: 12, marginBottom: 16, flexWrap: 'wrap' }}>
          <Typography.Text type="secondary">{t('tokens.intro')}</Typography.Text>
          <Space>
            {isAdmin && (
              <Space>
                <Switch checked={all} onChange={setAll} size="small" data-testid="tokens-all" />
                <span>{t('tokens.showAll')}</span>
              </Space>
            )}
            <Button icon={<ReloadOutlined />} onClick={load}>
              {t('common.refresh')}
            </Button>
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="token-create">
              {t('tokens.create')}
            </Button>
          </Space>
        </div>
        <Table<Token> rowKey="id" size="middle" loading={loading} columns={columns} dataSource={items} pagination={false} data-testid="tokens-table" />
      </Card>
      {creating && (
        <CreateTokenModal
          onClose={(tok) => {
            setCreating(false);
            if (tok) {
              setCreated(tok);
              load();
            }
          }}
        />
      )}
      {created && <SecretModal token={created} onClose={() => setCreated(null)} />}
    </div>
  );
}

function CreateTokenModal({ onClose }: { onClose: (tok: Token | null) => void }) {
  const t = useT();
  const [form] = Form.useForm<{ name: string; expires_in_days?: number | null }>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    let v: { name: string; expires_in_days?: number | null };
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      const body: Record<string, unknown> = { name: v.name.trim() };
      if (v.expires_in_days) body.expires_in_days = v.expires_in_days;
      const tok = await api.post<Token>('/tokens', body);
      onClose(tok);
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={t('tokens.createTitle')}
      onCancel={() => onClose(null)}
      onOk={submit}
      okText={t('common.create')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'token-form-submit' }}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" onFinish={submit}>
        <Form.Item name="name" label={t('tokens.name')} rules={[{ required: true, message: t('tokens.required.name') }]}>
          <Input maxLength={100} data-testid="token-form-name" />
        </Form.Item>
        <Form.Item name="expires_in_days" label={t('tokens.expiresInDays')} extra={t('tokens.expiresHelp')}>
          <InputNumber min={1} max={3650} precision={0} style={{ width: 160 }} data-testid="token-form-days" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

function SecretModal({ token, onClose }: { token: Token; onClose: () => void }) {
  const t = useT();
  return (
    <Modal
      open
      title={t('tokens.secretTitle')}
      onCancel={onClose}
      maskClosable={false}
      footer={
        <Button type="primary" onClick={onClose} data-testid="token-secret-close">
          {t('common.close')}
        </Button>
      }
    >
      <Alert type="warning" showIcon title={t('tokens.secretWarning')} style={{ marginBottom: 16 }} />
      <Typography.Text type="secondary">{token.name}</Typography.Text>
      <div style={{ background: '#f6f8fa', border: '1px solid #e5e7eb', borderRadius: 6, padding: '10px 12px', marginTop: 8 }}>
        <Typography.Text
          className="omp-mono"
          data-testid="token-secret"
          copyable={{ text: token.token ?? '', tooltips: [t('common.copy'), t('common.copied')] }}
        >
          {token.token ?? ''}
        </Typography.Text>
      </div>
    </Modal>
  );
}
