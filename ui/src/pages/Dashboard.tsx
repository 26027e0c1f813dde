// Overview: server version and uptime, who is signed in, how many users exist (when the
// user may see them) and which modules are available now vs later. No made-up numbers.
import { useEffect, useState } from 'react';
import { Card, Col, Descriptions, List, Row, Space, Statistic, Tag, Typography } from 'antd';
import { CheckCircleTwoTone, ClockCircleOutlined } from '@ant-design/icons';
import { Link, useNavigate } from 'react-router-dom';
import { api, type Page, type User } from '../api';
import { useI18n } from '../i18n';
import { fmtTime, useCan, useSession } from '../session';
import { MODULES, moduleUsable, useSystem, type ModuleKey } from '../modules';

/** The permission a module's page needs, where it needs one. */
const PAGE_PERMISSION: Partial<Record<ModuleKey, string>> = { hosts: 'hosts:read', users: 'users:read', audit: 'audit:read' };

function fmtUptime(secs: number, zh: boolean): string {
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = Math.floor(secs % 60);
  const parts: string[] = [];
  if (zh) {
    if (d) parts.push(`${d} 天`);
    if (d || h) parts.push(`${h} 小时`);
    if (d || h || m) parts.push(`${m} 分`);
    if (!d) parts.push(`${s} 秒`);
  } else {
    if (d) parts.push(`${d}d`);
    if (d || h) parts.push(`${h}h`);
    if (d || h || m) parts.push(`${m}m`);
    if (!d) parts.push(`${s}s`);
  }
  return parts.join(' ');
}

export default function DashboardPage() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const can = useCan();
  const navigate = useNavigate();
  const { info } = useSystem();
  const [userCount, setUserCount] = useState<number | null>(null);
  const [tick, setTick] = useState(0);
  const zh = lang === 'zh-CN';

  useEffect(() => {
    if (!can('users:read')) return;
    api
      .get<Page<User>>('/users', { page: 1, page_size: 1 }, { silent: true })
      .then((p) => setUserCount(p.total))
      .catch(() => undefined);
  }, []);

  // Uptime ticks locally from the value the server reported.
  useEffect(() => {
    const id = window.setInterval(() => setTick((x) => x + 1), 1000);
    return () => window.clearInterval(id);
  }, []);
  const [loadedAt] = useState(() => Date.now());
  const uptime = info ? info.uptime_secs + Math.floor((Date.now() - loadedAt) / 1000) : null;
  void tick;

  const modules = MODULES.map((d) => ({ def: d, usable: moduleUsable(info, d) }));
  const available = modules.filter((m) => m.usable);
  const later = modules.filter((m) => !m.usable);

  return (
    <div data-testid="dashboard">
      <Typography.Title level={3} className="omp-page-title">
        {t('dash.title')}
      </Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24} sm={12} lg={6}>
          <Card>
            <Statistic title={t('dash.version')} value={info?.version ?? '—'} data-testid="dash-version" />
          </Card>
        </Col>
        <Col xs={24} sm={12} lg={6}>
          <Card>
            <Statistic title={t('dash.uptime')} value={uptime === null ? '—' : fmtUptime(uptime, zh)} />
          </Card>
        </Col>
        <Col xs={24} sm={12} lg={6}>
          <Card>
            <Statistic
              title={t('dash.users')}
              value={userCount ?? '—'}
              suffix={
                !can('users:read') ? (
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {t('dash.usersHidden')}
                  </Typography.Text>
                ) : undefined
              }
            />
          </Card>
        </Col>
        <Col xs={24} sm={12} lg={6}>
          <Card>
            <Statistic
              title={t('dash.modules')}
              value={info ? t('dash.availableCount', { a: available.length, n: modules.length }) : '—'}
              styles={{ content: { fontSize: 20 } }}
            />
          </Card>
        </Col>

        <Col xs={24} lg={12}>
          <Card title={t('dash.account')} style={{ height: '100%' }}>
            <Descriptions column={1} size="small">
              <Descriptions.Item label={t('dash.signedInAs')}>
                <Typography.Text strong data-testid="dash-user">
                  {me.username}
                </Typography.Text>
                {me.display_name && me.display_name !== me.username && (
                  <Typography.Text type="secondary" style={{ marginLeft: 6 }}>
                    ({me.display_name})
                  </Typography.Text>
                )}
              </Descriptions.Item>
              <Descriptions.Item label={t('dash.roles')}>
                <Space size={[4, 4]} wrap>
                  {me.roles.map((r) => (
                    <Tag key={r} color="blue">
                      {r}
                    </Tag>
                  ))}
                </Space>
              </Descriptions.Item>
              <Descriptions.Item label={t('dash.lastLogin')}>{fmtTime(me.last_login_at)}</Descriptions.Item>
              <Descriptions.Item label={t('profile.totp')}>
                {me.totp_enabled ? (
                  <Tag color="green">{t('dash.totpOn')}</Tag>
                ) : (
                  <Space>
                    <Tag>{t('dash.totpOff')}</Tag>
                    <Link to="/profile">{t('dash.setupTotp')}</Link>
                  </Space>
                )}
              </Descriptions.Item>
            </Descriptions>
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t('dash.server')} style={{ height: '100%' }}>
            <Descriptions column={1} size="small">
              <Descriptions.Item label={t('dash.version')}>{info?.version ?? '—'}</Descriptions.Item>
              <Descriptions.Item label={t('dash.startedAt')}>{fmtTime(info?.started_at)}</Descriptions.Item>
              <Descriptions.Item label={t('dash.uptime')}>{uptime === null ? '—' : fmtUptime(uptime, zh)}</Descriptions.Item>
            </Descriptions>
          </Card>
        </Col>

        <Col xs={24} lg={12}>
          <Card title={t('dash.available')} data-testid="dash-available">
            <List
              size="small"
              dataSource={available}
              renderItem={({ def }) => (
                <List.Item
                  style={{ cursor: 'pointer' }}
                  onClick={() => navigate(def.path)}
                  extra={
                    PAGE_PERMISSION[def.key] && !can(PAGE_PERMISSION[def.key]!) ? (
                      <Tag>{t('dash.needs', { perm: PAGE_PERMISSION[def.key]! })}</Tag>
                    ) : (
                      <CheckCircleTwoTone twoToneColor="#52c41a" />
                    )
                  }
                >
                  <List.Item.Meta avatar={def.icon} title={t(`module.${def.key}`)} description={t(`moduleDesc.${def.key}`)} />
                </List.Item>
              )}
            />
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t('dash.comingLater')} data-testid="dash-later">
            <List
              size="small"
              dataSource={later}
              renderItem={({ def }) => (
                <List.Item extra={<ClockCircleOutlined style={{ color: '#8c8c8c' }} />}>
                  <List.Item.Meta avatar={def.icon} title={t(`module.${def.key}`)} description={t(`moduleDesc.${def.key}`)} />
                </List.Item>
              )}
            />
          </Card>
        </Col>
      </Row>
    </div>
  );
}
