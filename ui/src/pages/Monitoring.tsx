// Monitoring module: the frame (title, Explorer / Scrape targets tabs) and its routes. Both pages
// are lazy chunks, so the targets page does not load ECharts (only the explorer draws charts).
import { lazy, Suspense } from 'react';
import { Spin, Tabs, Typography } from 'antd';
import { Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { useT } from '../i18n';
import { useCan } from '../session';
import { NoPermission } from '../components/common';

const ExplorerPage = lazy(() => import('./Explorer'));
const ScrapeTargetsPage = lazy(() => import('./ScrapeTargets'));

export default function MonitoringModule() {
  const t = useT();
  const can = useCan();
  const navigate = useNavigate();
  const location = useLocation();
  if (!can('metrics:read')) return <NoPermission />;
  const path = location.pathname.replace(/\/+$/, '');
  const tab = path === '/monitoring/targets' ? 'targets' : 'explorer';
  return (
    <div data-testid="monitoring-page">
      <Typography.Title level={3} style={{ margin: '0 0 8px' }}>
        {t('module.monitoring')}
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={(k) => navigate(k === 'explorer' ? '/monitoring' : `/monitoring/${k}`)}
        items={[
          { key: 'explorer', label: <span data-testid="tab-explorer">{t('explorer.title')}</span> },
          { key: 'targets', label: <span data-testid="tab-targets">{t('scrape.title')}</span> },
        ]}
        style={{ marginBottom: 0 }}
      />
      <Suspense
        fallback={
          <div style={{ padding: 80, textAlign: 'center' }}>
            <Spin />
          </div>
        }
      >
        <Routes>
          <Route index element={<ExplorerPage />} />
          <Route path="targets" element={<ScrapeTargetsPage />} />
          <Route path="*" element={<ExplorerPage />} />
        </Routes>
      </Suspense>
    </div>
  );
}
