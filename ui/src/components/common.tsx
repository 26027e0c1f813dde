// Small pieces shared by several pages: the logo, the language switch, the change-password
// form and the "no permission" result.
import { useState } from 'react';
import { App as AntApp, Button, Dropdown, Form, Input, Result } from 'antd';
import { GlobalOutlined } from '@ant-design/icons';
import { api } from '../api';
import { useI18n, useT, type Lang } from '../i18n';

export function LogoMark({ size = 28 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="#1677ff" />
      <circle cx="16" cy="16" r="8" fill="none" stroke="#fff" strokeWidth="3" />
      <circle cx="16" cy="16" r="2.5" fill="#fff" />
    </svg>
  );
}

export function LangSwitch({ dark = false }: { dark?: boolean }) {
  const { lang, setLang, t } = useI18n();
  const langs: Lang[] = ['en', 'zh-CN'];
  return (
    <Dropdown
      trigger={['click']}
      menu={{
        selectable: true,
        selectedKeys: [lang],
        items: langs.map((l) => ({
          key: l,
          label: <span data-testid={`lang-${l}`}>{t(`lang.${l}`)}</span>,
        })),
        onClick: ({ key }) => setLang(key as Lang),
      }}
    >
      <Button
        type="text"
        icon={<GlobalOutlined />}
        data-testid="lang-switch"
        style={dark ? { color: '#fff' } : undefined}
        aria-label={t('lang.label')}
      >
        {t(`lang.${lang}`)}
      </Button>
    </Dropdown>
  );
}

export function NoPermission() {
  const t = useT();
  return <Result status="403" title={t('common.noPermissionTitle')} subTitle={t('common.noPermission')} />;
}

interface PwdValues {
  current_password: string;
  new_password: string;
  confirm: string;
}

/** Current + new + confirm; POST /auth/password. */
export function ChangePasswordForm({ onDone, submitBlock = false }: { onDone?: () => void; submitBlock?: boolean }) {
  const t = useT();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<PwdValues>();
  const [busy, setBusy] = useState(false);

  const submit = async (v: PwdValues) => {
    setBusy(true);
    try {
      await api.post('/auth/password', { current_password: v.current_password, new_password: v.new_password });
      message.success(t('pwd.changed'));
      form.resetFields();
      onDone?.();
    } catch {
      // reported by the API client
    } finally {
      setBusy(false);
    }
  };

  return (
    <Form form={form} layout="vertical" onFinish={submit} requiredMark={false} style={{ maxWidth: 420 }}>
      <Form.Item name="current_password" label={t('pwd.current')} rules={[{ required: true, message: t('common.required') }]}>
        <Input.Password autoComplete="current-password" data-testid="pwd-current" />
      </Form.Item>
      <Form.Item
        name="new_password"
        label={t('pwd.new')}
        rules={[
          { required: true, message: t('common.required') },
          { min: 8, message: t('pwd.tooShort') },
        ]}
      >
        <Input.Password autoComplete="new-password" data-testid="pwd-new" />
      </Form.Item>
      <Form.Item
        name="confirm"
        label={t('pwd.confirm')}
        dependencies={['new_password']}
        rules={[
          { required: true, message: t('common.required') },
          ({ getFieldValue }) => ({
            validator(_, value) {
              if (!value || getFieldValue('new_password') === value) return Promise.resolve();
              return Promise.reject(new Error(t('pwd.mismatch')));
            },
          }),
        ]}
      >
        <Input.Password autoComplete="new-password" data-testid="pwd-confirm" />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={busy} block={submitBlock} data-testid="pwd-submit">
        {t('pwd.submit')}
      </Button>
    </Form>
  );
}
