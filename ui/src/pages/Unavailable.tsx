// The honest page for a module that this release does not have yet (or an unknown address).
import { Button, Result } from 'antd';
import { ClockCircleOutlined } from '@ant-design/icons';
import { useNavigate } from 'react-router-dom';
import { useT } from '../i18n';
import { useSystem, type ModuleKey } from '../modules';

export default function UnavailablePage({ moduleKey }: { moduleKey: ModuleKey | null }) {
  const t = useT();
  const navigate = useNavigate();
  const { info } = useSystem();
  const back = (
    <Button type="primary" onClick={() => navigate('/')} data-testid="unavailable-back">
      {t('unavailable.back')}
    </Button>
  );
  if (!moduleKey) {
    return <Result status="404" title={t('notFound.title')} subTitle={t('notFound.sub')} extra={back} />;
  }
  const serverSaysAvailable = info?.modules?.find((m) => m.key === moduleKey)?.available === true;
  return (
    <Result
      data-testid={`unavailable-${moduleKey}`}
      icon={<ClockCircleOutlined style={{ color: '#8c8c8c' }} />}
      title={t('unavailable.title', { module: t(`module.${moduleKey}`) })}
      subTitle={
        <>
          <div>{t(`moduleDesc.${moduleKey}`)}</div>
          <div>{serverSaysAvailable ? t('unavailable.noPage') : t('unavailable.later')}</div>
        </>
      }
      extra={back}
    />
  );
}
