// The signed-in frame: collapsible left menu with every module, header with the product
// name, language switch and user menu, and the routed page in the middle.
import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import { Avatar, Button, Dropdown, Layout, Menu, Spin, Tooltip, Typography } from 'antd';
import {
  ApiOutlined,
  LogoutOutlined,
  MenuFoldOutlined,
  MenuUnfoldOutlined,
  UserOutlined,
} from '@ant-design/icons';
import { Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { api, type SystemInfo } from '../api';
import { useT } from '../i18n';
import { useSession } from '../session';
import { MODULES, SystemContext, moduleUsable, useSystem, type ModuleKey, type SystemState } from '../modules';
import { LangSwitch, LogoMark } from '../components/common';

const DashboardPage = lazy(() => import('../pages/Dashboard'));
const UsersPage = lazy(() => import('../pages/Users'));
const AuditPage = lazy(() => import('../pages/Audit'));
const TokensPage = lazy(() => import('../pages/Tokens'));
const ProfilePage = lazy(() => import('../pages/Profile'));
const UnavailablePage = lazy(() => import('../pages/Unavailable'));
const HostsModule = lazy(() => import('../pages/Hosts'));
const MonitoringPage = lazy(() => import('../pages/Monitoring'));

const COLLAPSE_KEY = 'omp.menuCollapsed';

export default function MainLayout() {
  const t = useT();
  const { me, logout } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [collapsed, setCollapsed] = useState(() => {
    try {
      return localStorage.getItem(COLLAPSE_KEY) === '1';
    } catch {
      return false;
    }
  });
  const [info, setInfo] = useState<SystemInfo | null>(null);
  const [infoFailed, setInfoFailed] = useState(false);

  const reload = useCallback(() => {
    api
      .get<SystemInfo>('/system/info')
      .then((i) => {
        setInfo(i);
        setInfoFailed(false);
      })
      .catch(() => setInfoFailed(true));
  }, []);
  useEffect(reload, [reload]);
  const system = useMemo<SystemState>(() => ({ info, failed: infoFailed, reload }), [info, infoFailed, reload]);

  const toggle = () => {
    const c = !collapsed;
    setCollapsed(c);
    try {
      localStorage.setItem(COLLAPSE_KEY, c ? '1' : '0');
    } catch {
      // storage blocked
    }
  };

  const selected = useMemo(() => {
    const p = location.pathname;
    if (p === '/' || p === '') return 'dashboard';
    const m = MODULES.find((d) => d.path !== '/' && (p === d.path || p.startsWith(d.path + '/')));
    return m?.key ?? '';
  }, [location.pathname]);

  const items = MODULES.map((d) => {
    const usable = moduleUsable(info, d);
    return {
      key: d.key,
      icon: d.icon,
      label: (
        <span data-testid={`nav-${d.key}`}>
          {t(`module.${d.key}`)}
          {!usable && <span className="omp-menu-later">· {t('menu.later')}</span>}
        </span>
      ),
    };
  });

  const userName = me.display_name || me.username;

  return (
    <SystemContext.Provider value={system}>
      <Layout hasSider style={{ minHeight: '100vh' }}>
        {/* the wrapper keeps the dark sider colour down the whole page; the sider itself sticks */}
        <div style={{ background: '#001529', flex: 'none' }}>
        <Layout.Sider
          collapsible
          collapsed={collapsed}
          trigger={null}
          width={224}
          collapsedWidth={64}
          style={{ position: 'sticky', top: 0, height: '100vh', overflow: 'auto' }}
          data-testid="sider"
        >
          <div className="omp-sider-logo" style={collapsed ? { padding: '0 18px' } : undefined}>
            <div className="omp-logo">
              <LogoMark size={28} />
              {!collapsed && <span data-testid="product-name">{t('app.name')}</span>}
            </div>
          </div>
          <Menu
            theme="dark"
            mode="inline"
            selectedKeys={[selected]}
            items={items}
            onClick={({ key }) => {
              const d = MODULES.find((x) => x.key === key);
              if (d) navigate(d.path);
            }}
            data-testid="main-menu"
          />
        </Layout.Sider>
        </div>
        <Layout>
          <Layout.Header className="omp-header">
            <div style={{ display: 'flex', alignItems: 'center', gap: 8 }}>
              <Tooltip title={collapsed ? t('header.expand') : t('header.collapse')}>
                <Button
                  type="text"
                  onClick={toggle}
                  icon={collapsed ? <MenuUnfoldOutlined /> : <MenuFoldOutlined />}
                  data-testid="menu-toggle"
                />
              </Tooltip>
              <Typography.Text strong style={{ fontSize: 16 }}>
                {t('app.name')}
              </Typography.Text>
              <Typography.Text type="secondary" style={{ fontSize: 13 }}>
                {t('app.fullName')}
              </Typography.Text>
            </div>
            <div style={{ display: 'flex', alignItems: 'center', gap: 8 }}>
              <LangSwitch />
              <Dropdown
                trigger={['click']}
                menu={{
                  items: [
                    { key: 'profile', icon: <UserOutlined />, label: <span data-testid="menu-profile">{t('header.profile')}</span> },
                    { key: 'tokens', icon: <ApiOutlined />, label: <span data-testid="menu-tokens">{t('header.tokens')}</span> },
                    { type: 'divider' },
                    { key: 'logout', icon: <LogoutOutlined />, label: <span data-testid="menu-logout">{t('header.logout')}</span> },
                  ],
                  onClick: ({ key }) => {
                    if (key === 'profile') navigate('/profile');
                    else if (key === 'tokens') navigate('/tokens');
                    else if (key === 'logout') {
                      void logout().then(() => navigate('/'));
                    }
                  },
                }}
              >
                <Button type="text" data-testid="user-menu" style={{ display: 'flex', alignItems: 'center', gap: 8 }}>
                  <Avatar size="small" style={{ background: '#1668dc' }}>
                    {userName.slice(0, 1).toUpperCase()}
                  </Avatar>
                  <span>{userName}</span>
                </Button>
              </Dropdown>
            </div>
          </Layout.Header>
          <Layout.Content className="omp-content">
            <Suspense
              fallback={
                <div style={{ padding: 80, textAlign: 'center' }}>
                  <Spin />
                </div>
              }
            >
              <Routes>
                <Route path="/" element={<DashboardPage />} />
                <Route path="/users" element={<UsersPage />} />
                <Route path="/audit" element={<AuditPage />} />
                <Route path="/tokens" element={<TokensPage />} />
                <Route path="/profile" element={<ProfilePage />} />
                <Route
                  path="/hosts/*"
                  element={
                    <ModuleGate moduleKey="hosts">
                      <HostsModule />
                    </ModuleGate>
                  }
                />
                <Route
                  path="/monitoring/*"
                  element={
                    <ModuleGate moduleKey="monitoring">
                      <MonitoringPage />
                    </ModuleGate>
                  }
                />
                <Route path="/login" element={<Navigate to="/" replace />} />
                {MODULES.filter((d) => !d.hasPage).map((d) => (
                  <Route key={d.key} path={d.path} element={<UnavailablePage moduleKey={d.key} />} />
                ))}
                <Route path="*" element={<UnavailablePage moduleKey={null} />} />
              </Routes>
            </Suspense>
          </Layout.Content>
        </Layout>
      </Layout>
    </SystemContext.Provider>
  );
}

/**
 * Shows a module's page only when the server offers the module (GET /system/info); an older
 * server that reports it unavailable gets the honest "not available yet" page instead.
 */
function ModuleGate({ moduleKey, children }: { moduleKey: ModuleKey; children: React.ReactNode }) {
  const { info, failed } = useSystem();
  const def = MODULES.find((d) => d.key === moduleKey);
  if (!info && !failed) {
    return (
      <div style={{ padding: 80, textAlign: 'center' }}>
        <Spin />
      </div>
    );
  }
  if (!def || !moduleUsable(info, def)) return <UnavailablePage moduleKey={moduleKey} />;
  return <>{children}</>;
}
