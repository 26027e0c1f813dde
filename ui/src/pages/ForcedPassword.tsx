// The screen a user sees when the server says the password must be changed first
// (must_change_password, or 403 password_change_required). Nothing else is reachable.
import { Alert, Button, Card, Typography } from 'antd';
import { useT } from '../i18n';
import { useSession } from '../session';
import { ChangePasswordForm, LangSwitch, LogoMark } from '../components/common';

export default function ForcedPasswordPage({ onDone }: { onDone: () => void }) {
  const t = useT();
  const { me, logout } = useSession();
  return (
    <div className="omp-login-bg" data-testid="forced-password">
      <div style={{ display: 'flex', justifyContent: 'flex-end', gap: 8, padding: '12px 20px' }}>
        <LangSwitch dark />
        <Button type="text" style={{ color: '#fff' }} onClick={() => void logout()} data-testid="forced-logout">
          {t('header.logout')}
        </Button>
      </div>
      <div style={{ flex: 1, display: 'flex', alignItems: 'center', justifyContent: 'center', padding: '0 16px 80px' }}>
        <div style={{ width: 440, maxWidth: '100%' }}>
          <div style={{ display: 'flex', justifyContent: 'center', marginBottom: 20 }}>
            <LogoMark size={44} />
          </div>
          <Card style={{ boxShadow: '0 12px 40px rgba(0,0,0,0.25)' }}>
            <Typography.Title level={4} style={{ marginTop: 0 }}>
              {t('pwd.forcedTitle')}
            </Typography.Title>
            <Typography.Paragraph type="secondary">{me.display_name || me.username}</Typography.Paragraph>
            <Alert type="warning" showIcon title={t('pwd.forcedHint')} style={{ marginBottom: 20 }} />
            <ChangePasswordForm onDone={onDone} submitBlock />
          </Card>
        </div>
      </div>
    </div>
  );
}
