// My profile: name, e-mail and language; password change; TOTP setup/enable/disable;
// the list of sessions and "sign out everywhere".
import { useCallback, useEffect, useState } from 'react';
import {
  Alert,
  App as AntApp,
  Button,
  Card,
  Col,
  Form,
  Input,
  Popconfirm,
  Row,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd';
import { SafetyCertificateOutlined } from '@ant-design/icons';
import { api, type Me, type Session } from '../api';
import { normalizeLang, translate, useI18n, type Lang } from '../i18n';
import { fmtTime, useSession } from '../session';
import { ChangePasswordForm } from '../components/common';

export default function ProfilePage() {
  const { t } = useI18n();
  return (
    <div data-testid="profile-page">
      <Typography.Title level={3} className="omp-page-title">
        {t('profile.title')}
      </Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={12}>
          <DetailsCard />
        </Col>
        <Col xs={24} xl={12}>
          <Card title={t('profile.password')} style={{ height: '100%' }}>
            <ChangePasswordForm />
          </Card>
        </Col>
        <Col xs={24}>
          <TotpCard />
        </Col>
        <Col xs={24}>
          <SessionsCard />
        </Col>
      </Row>
    </div>
  );
}

interface DetailsValues {
  display_name: string;
  email: string;
  language: Lang;
}

function DetailsCard() {
  const { t, lang, adoptLang } = useI18n();
  const { me, setMe } = useSession();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<DetailsValues>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    form.setFieldsValue({ language: lang });
  }, [lang, form]);

  const submit = async (v: DetailsValues) => {
    setBusy(true);
    try {
      const m = await api.put<Me>('/auth/profile', { display_name: v.display_name ?? '', email: v.email ?? '', language: v.language });
      if (m) setMe(m);
      const l = normalizeLang(m?.language ?? v.language);
      if (l && l !== lang) adoptLang(l);
      message.success(translate(l ?? lang, 'profile.saved'));
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title={t('profile.details')} style={{ height: '100%' }}>
      <Form
        form={form}
        layout="vertical"
        style={{ maxWidth: 420 }}
        initialValues={{ display_name: me.display_name, email: me.email, language: normalizeLang(me.language) ?? lang }}
        onFinish={submit}
      >
        <Form.Item label={t('profile.username')}>
          <Input value={me.username} disabled />
        </Form.Item>
        <Form.Item name="display_name" label={t('users.displayName')}>
          <Input data-testid="profile-display-name" />
        </Form.Item>
        <Form.Item name="email" label={t('users.email')} rules={[{ type: 'email' }]}>
          <Input data-testid="profile-email" />
        </Form.Item>
        <Form.Item name="language" label={t('lang.label')}>
          <Select
            data-testid="profile-language"
            options={[
              { value: 'en', label: t('lang.en') },
              { value: 'zh-CN', label: t('lang.zh-CN') },
            ]}
          />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={busy} data-testid="profile-save">
          {t('common.save')}
        </Button>
      </Form>
    </Card>
  );
}

function TotpCard() {
  const { t } = useI18n();
  const { me, refreshMe } = useSession();
  const { message } = AntApp.useApp();
  const [setup, setSetup] = useState<{ secret: string; otpauth_url: string } | null>(null);
  const [qr, setQr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');

  useEffect(() => {
    if (!setup) {
      setQr(null);
      return;
    }
    let cancelled = false;
    import('qrcode')
      .then((m) => m.toDataURL(setup.otpauth_url, { margin: 1, width: 200 }))
      .then((url) => !cancelled && setQr(url))
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [setup]);

  const begin = async () => {
    setBusy(true);
    try {
      setSetup(await api.post<{ secret: string; otpauth_url: string }>('/auth/totp/setup'));
      setCode('');
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  const enable = async () => {
    setBusy(true);
    try {
      await api.post('/auth/totp/enable', { code: code.trim() });
      message.success(t('profile.totpEnabled'));
      setSetup(null);
      await refreshMe();
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  const disable = async () => {
    setBusy(true);
    try {
      await api.post('/auth/totp/disable', { password });
      message.success(t('profile.totpDisabled'));
      setPassword('');
      await refreshMe();
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card
      title={
        <Space>
          <SafetyCertificateOutlined />
          {t('profile.totp')}
          {me.totp_enabled ? <Tag color="green">{t('users.enabled')}</Tag> : <Tag>{t('users.disabled')}</Tag>}
        </Space>
      }
      data-testid="totp-card"
    >
      {me.totp_enabled ? (
        <>
          <Typography.Paragraph>{t('profile.totpOn')}</Typography.Paragraph>
          <Space.Compact style={{ maxWidth: 420, width: '100%' }}>
            <Input.Password
              placeholder={t('profile.totpDisablePwd')}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="current-password"
              data-testid="totp-disable-password"
            />
            <Button danger loading={busy} disabled={!password} onClick={disable} data-testid="totp-disable">
              {t('profile.totpDisable')}
            </Button>
          </Space.Compact>
        </>
      ) : !setup ? (
        <>
          <Typography.Paragraph>{t('profile.totpOff')}</Typography.Paragraph>
          <Button type="primary" loading={busy} onClick={begin} data-testid="totp-setup">
            {t('profile.totpSetup')}
          </Button>
        </>
      ) : (
        <Row gutter={24}>
          <Col flex="220px">
            {qr ? (
              <img src={qr} width={200} height={200} alt="TOTP QR code" style={{ border: '1px solid #eee', borderRadius: 6 }} />
            ) : (
              <div style={{ width: 200, height: 200, background: '#fafafa', borderRadius: 6 }} />
            )}
          </Col>
          <Col flex="auto" style={{ minWidth: 260 }}>
            <Alert type="info" showIcon title={t('profile.totpScan')} style={{ marginBottom: 12 }} />
            <Typography.Text type="secondary">{t('profile.totpSecret')}</Typography.Text>
            <Typography.Paragraph className="omp-mono" copyable data-testid="totp-secret">
              {setup.secret}
            </Typography.Paragraph>
            <Typography.Text type="secondary">{t('profile.totpUrl')}</Typography.Text>
            <Typography.Paragraph className="omp-mono" copyable style={{ fontSize: 12 }} data-testid="totp-url">
              {setup.otpauth_url}
            </Typography.Paragraph>
            <Space.Compact style={{ maxWidth: 320, width: '100%' }}>
              <Input
                placeholder={t('profile.totpCode')}
                value={code}
                onChange={(e) => setCode(e.target.value)}
                inputMode="numeric"
                maxLength={8}
                onPressEnter={() => code.trim() && void enable()}
                data-testid="totp-code"
              />
              <Button type="primary" loading={busy} disabled={!code.trim()} onClick={enable} data-testid="totp-enable">
                {t('profile.totpEnable')}
              </Button>
            </Space.Compact>
            <div style={{ marginTop: 12 }}>
              <Button type="link" style={{ padding: 0 }} onClick={() => setSetup(null)}>
                {t('common.cancel')}
              </Button>
            </div>
          </Col>
        </Row>
      )}
    </Card>
  );
}

function SessionsCard() {
  const { t } = useI18n();
  const { sessionEnded } = useSession();
  const [items, setItems] = useState<Session[]>([]);
  const [loading, setLoading] = useState(false);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<{ items: Session[] }>('/auth/sessions')
      .then((r) => setItems(r.items))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, []);
  useEffect(load, [load]);

  const revokeAll = async () => {
    try {
      await api.post('/auth/sessions/revoke-all');
      sessionEnded();
    } catch {
      // reported
    }
  };

  return (
    <Card
      title={t('profile.sessions')}
      extra={
        <Popconfirm
          title={t('profile.revokeAllConfirm')}
          okText={t('common.confirm')}
          cancelText={t('common.cancel')}
          okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
          onConfirm={revokeAll}
        >
          <Button danger data-testid="sessions-revoke-all">
            {t('profile.revokeAll')}
          </Button>
        </Popconfirm>
      }
    >
      <Typography.Paragraph type="secondary">{t('profile.sessionsIntro')}</Typography.Paragraph>
      <Table<Session>
        rowKey="id"
        size="small"
        loading={loading}
        dataSource={items}
        pagination={false}
        data-testid="sessions-table"
        columns={[
          {
            title: t('profile.sessionCreated'),
            dataIndex: 'created_at',
            render: (v: string, s: Session) => (
              <Space>
                {fmtTime(v)}
                {s.current && <Tag color="blue">{t('profile.sessionCurrent')}</Tag>}
              </Space>
            ),
          },
          { title: t('profile.sessionLastSeen'), dataIndex: 'last_seen_at', render: (v: string) => fmtTime(v) },
          { title: t('profile.sessionSource'), dataIndex: 'source' },
          {
            title: t('profile.sessionAgent'),
            dataIndex: 'user_agent',
            ellipsis: true,
            render: (v: string) => <Typography.Text type="secondary">{v || '—'}</Typography.Text>,
          },
        ]}
      />
    </Card>
  );
}
