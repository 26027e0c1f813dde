// Sign-in page: username + password, a TOTP field once the server asks for one, and a live
// countdown while the server throttles attempts (429 too_many_attempts).
import { useEffect, useRef, useState } from 'react';
import { Alert, Button, Card, Form, Input, Typography } from 'antd';
import { LockOutlined, SafetyOutlined, UserOutlined } from '@ant-design/icons';
import { api, ApiError, type LoginAnswer } from '../api';
import { useT } from '../i18n';
import { LangSwitch, LogoMark } from '../components/common';

interface Values {
  username: string;
  password: string;
  totp?: string;
}

type Problem =
  | { kind: 'text'; text: string }
  | { kind: 'throttled' }
  | null;

export default function LoginPage({ onLoggedIn, notice }: { onLoggedIn: (a: LoginAnswer) => void; notice: string | null }) {
  const t = useT();
  const [form] = Form.useForm<Values>();
  const [busy, setBusy] = useState(false);
  const [needTotp, setNeedTotp] = useState(false);
  const [problem, setProblem] = useState<Problem>(null);
  const [retryUntil, setRetryUntil] = useState<number>(0);
  const [now, setNow] = useState(() => Date.now());
  const totpRef = useRef<HTMLInputElement | null>(null);

  const remaining = Math.max(0, Math.ceil((retryUntil - now) / 1000));

  useEffect(() => {
    if (retryUntil <= Date.now()) return;
    const id = window.setInterval(() => {
      const n = Date.now();
      setNow(n);
      if (n >= retryUntil) window.clearInterval(id);
    }, 250);
    return () => window.clearInterval(id);
  }, [retryUntil]);

  useEffect(() => {
    if (problem?.kind === 'throttled' && remaining === 0) setProblem(null);
  }, [problem, remaining]);

  useEffect(() => {
    if (needTotp) totpRef.current?.focus();
  }, [needTotp]);

  const submit = async (v: Values) => {
    if (remaining > 0) return;
    setBusy(true);
    setProblem(null);
    try {
      const body: Record<string, string> = { username: v.username.trim(), password: v.password };
      if (needTotp && v.totp) body.totp = v.totp.trim();
      const ans = await api.post<LoginAnswer>('/auth/login', body, { silent: true, noAuthRedirect: true });
      onLoggedIn(ans);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'network_error', String(e));
      switch (err.code) {
        case 'totp_required':
          setNeedTotp(true);
          break;
        case 'totp_invalid':
          setNeedTotp(true);
          form.setFieldValue('totp', '');
          setProblem({ kind: 'text', text: t('login.error.totpInvalid') });
          break;
        case 'invalid_credentials':
          setProblem({ kind: 'text', text: t('login.error.invalid') });
          break;
        case 'too_many_attempts': {
          const secs = Number(err.details?.retry_after_secs ?? 30);
          const until = Date.now() + (Number.isFinite(secs) && secs > 0 ? secs : 30) * 1000;
          setNow(Date.now());
          setRetryUntil(until);
          setProblem({ kind: 'throttled' });
          break;
        }
        case 'network_error':
          setProblem({ kind: 'text', text: t('login.error.network') });
          break;
        default:
          setProblem({ kind: 'text', text: err.message || err.code });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="omp-login-bg">
      <div style={{ display: 'flex', justifyContent: 'flex-end', padding: '12px 20px' }}>
        <LangSwitch dark />
      </div>
      <div style={{ flex: 1, display: 'flex', alignItems: 'center', justifyContent: 'center', padding: '0 16px 80px' }}>
        <div style={{ width: 380, maxWidth: '100%' }}>
          <div style={{ display: 'flex', flexDirection: 'column', alignItems: 'center', marginBottom: 24 }}>
            <LogoMark size={48} />
            <Typography.Title level={2} style={{ color: '#fff', margin: '12px 0 0' }}>
              {t('app.name')}
            </Typography.Title>
            <Typography.Text style={{ color: 'rgba(255,255,255,0.75)' }}>{t('login.subtitle')}</Typography.Text>
          </div>
          <Card style={{ boxShadow: '0 12px 40px rgba(0,0,0,0.25)' }}>
            <Typography.Title level={4} style={{ marginTop: 0, marginBottom: 20 }}>
              {t('login.title')}
            </Typography.Title>
            {notice && !problem && <Alert type="info" showIcon title={notice} style={{ marginBottom: 16 }} />}
            {problem && (
              <Alert
                type="error"
                showIcon
                data-testid="login-error"
                style={{ marginBottom: 16 }}
                title={problem.kind === 'throttled' ? t('login.error.throttled', { n: remaining }) : problem.text}
              />
            )}
            <Form form={form} layout="vertical" onFinish={submit} requiredMark={false} size="large">
              <Form.Item name="username" label={t('login.username')} rules={[{ required: true, message: t('login.required.username') }]}>
                <Input prefix={<UserOutlined />} autoComplete="username" autoFocus data-testid="login-username" />
              </Form.Item>
              <Form.Item name="password" label={t('login.password')} rules={[{ required: true, message: t('login.required.password') }]}>
                <Input.Password prefix={<LockOutlined />} autoComplete="current-password" data-testid="login-password" />
              </Form.Item>
              {needTotp && (
                <Form.Item
                  name="totp"
                  label={t('login.totp')}
                  extra={t('login.totpHelp')}
                  rules={[{ required: true, message: t('login.required.totp') }]}
                >
                  <Input
                    ref={(el) => {
                      totpRef.current = el?.input ?? null;
                    }}
                    prefix={<SafetyOutlined />}
                    inputMode="numeric"
                    autoComplete="one-time-code"
                    maxLength={8}
                    data-testid="login-totp"
                  />
                </Form.Item>
              )}
              <Button
                type="primary"
                htmlType="submit"
                block
                loading={busy}
                disabled={remaining > 0}
                data-testid="login-submit"
              >
                {remaining > 0 ? `${t('login.submit')} (${remaining})` : t('login.submit')}
              </Button>
            </Form>
          </Card>
        </div>
      </div>
    </div>
  );
}
