// Users & roles: a users table (search, paging, create/edit/disable/reset/delete) and a roles
// table (built-in read-only, custom roles editable). Actions the user lacks permission for are
// hidden; the server still decides.
import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  App as AntApp,
  Button,
  Card,
  Checkbox,
  Col,
  Divider,
  Form,
  Input,
  Modal,
  Popconfirm,
  Row,
  Select,
  Space,
  Switch,
  Table,
  Tabs,
  Tag,
  Tooltip,
  Typography,
} from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { DeleteOutlined, EditOutlined, EyeOutlined, KeyOutlined, PlusOutlined, ReloadOutlined } from '@ant-design/icons';
import { api, type Page, type Permission, type Role, type User } from '../api';
import { useT } from '../i18n';
import { fmtTime, useCan, useSession } from '../session';
import { NoPermission } from '../components/common';

function rowTestId(id: string): React.HTMLAttributes<HTMLElement> {
  return { 'data-testid': id } as React.HTMLAttributes<HTMLElement>;
}

export default function UsersPage() {
  const t = useT();
  const can = useCan();
  const [tab, setTab] = useState('users');
  if (!can('users:read')) return <NoPermission />;
  return (
    <div data-testid="users-page">
      <Typography.Title level={3} className="omp-page-title">
        {t('module.users')}
      </Typography.Title>
      <Card styles={{ body: { paddingTop: 8 } }}>
        <Tabs
          activeKey={tab}
          onChange={setTab}
          items={[
            { key: 'users', label: <span data-testid="tab-users">{t('users.tabUsers')}</span>, children: <UsersTab /> },
            { key: 'roles', label: <span data-testid="tab-roles">{t('users.tabRoles')}</span>, children: <RolesTab /> },
          ]}
        />
      </Card>
    </div>
  );
}

// ---------------------------------------------------------------- users

function UsersTab() {
  const t = useT();
  const can = useCan();
  const { me } = useSession();
  const { message } = AntApp.useApp();
  const canWrite = can('users:write');
  const [q, setQ] = useState('');
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(20);
  const [data, setData] = useState<Page<User> | null>(null);
  const [loading, setLoading] = useState(false);
  const [roles, setRoles] = useState<Role[]>([]);
  const [editing, setEditing] = useState<User | 'new' | null>(null);
  const [resetting, setResetting] = useState<User | null>(null);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<Page<User>>('/users', { q, page, page_size: pageSize })
      .then(setData)
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, [q, page, pageSize]);
  useEffect(load, [load]);

  useEffect(() => {
    api
      .get<{ items: Role[] }>('/roles', undefined, { silent: true })
      .then((r) => setRoles(r.items))
      .catch(() => undefined);
  }, []);

  const setDisabled = async (u: User, disabled: boolean) => {
    try {
      await api.put<User>(`/users/${encodeURIComponent(u.id)}`, { disabled });
      message.success(t('users.updated'));
      load();
    } catch {
      // reported
    }
  };

  const remove = async (u: User) => {
    try {
      await api.del(`/users/${encodeURIComponent(u.id)}`);
      message.success(t('users.deleted'));
      load();
    } catch {
      // reported
    }
  };

  const columns: ColumnsType<User> = [
    {
      title: t('users.username'),
      dataIndex: 'username',
      render: (v: string) => (
        <Space>
          <Typography.Text strong>{v}</Typography.Text>
          {v === me.username && <Tag>{t('users.you')}</Tag>}
        </Space>
      ),
    },
    { title: t('users.displayName'), dataIndex: 'display_name', render: (v: string) => v || '—' },
    { title: t('users.email'), dataIndex: 'email', render: (v: string) => v || '—' },
    {
      title: t('users.roles'),
      dataIndex: 'roles',
      render: (rs: string[]) => (
        <Space size={[4, 4]} wrap>
          {rs.map((r) => (
            <Tag key={r} color="blue">
              {r}
            </Tag>
          ))}
        </Space>
      ),
    },
    {
      title: t('users.status'),
      key: 'status',
      render: (_: unknown, u: User) => (
        <Space size={[4, 4]} wrap>
          {u.disabled ? <Tag color="default">{t('users.disabled')}</Tag> : <Tag color="green">{t('users.active')}</Tag>}
          {u.must_change_password && <Tag color="orange">{t('users.mustChange')}</Tag>}
          {u.totp_enabled && <Tag color="purple">{t('users.totp')}</Tag>}
        </Space>
      ),
    },
    { title: t('users.lastLogin'), dataIndex: 'last_login_at', render: (v: string) => fmtTime(v) },
  ];
  if (canWrite) {
    columns.push({
      title: t('common.actions'),
      key: 'actions',
      width: 220,
      render: (_: unknown, u: User) => {
        const self = u.username === me.username;
        return (
          <Space size={4}>
            <Tooltip title={u.disabled ? t('users.enable') : t('users.disable')}>
              <Switch
                size="small"
                checked={!u.disabled}
                disabled={self}
                onChange={(on) => void setDisabled(u, !on)}
                data-testid={`user-enabled-${u.username}`}
              />
            </Tooltip>
            <Tooltip title={t('common.edit')}>
              <Button type="text" size="small" icon={<EditOutlined />} onClick={() => setEditing(u)} data-testid={`user-edit-${u.username}`} />
            </Tooltip>
            <Tooltip title={t('users.resetPassword')}>
              <Button type="text" size="small" icon={<KeyOutlined />} onClick={() => setResetting(u)} data-testid={`user-reset-${u.username}`} />
            </Tooltip>
            <Popconfirm
              title={t('users.deleteConfirm', { name: u.username })}
              okText={t('common.delete')}
              cancelText={t('common.cancel')}
              okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
              onConfirm={() => remove(u)}
              disabled={self}
            >
              <Button type="text" size="small" danger icon={<DeleteOutlined />} disabled={self} data-testid={`user-delete-${u.username}`} />
            </Popconfirm>
          </Space>
        );
      },
    });
  }

  return (
    <>
      <div style={{ display: 'flex', justifyContent: 'space-between', marginBottom: 16, gap: 12, flexWrap: 'wrap' }}>
        <Input.Search
          allowClear
          placeholder={t('users.searchPlaceholder')}
          style={{ width: 320 }}
          onSearch={(v) => {
            setPage(1);
            setQ(v.trim());
          }}
          data-testid="users-search"
        />
        <Space>
          <Button icon={<ReloadOutlined />} onClick={load}>
            {t('common.refresh')}
          </Button>
          {canWrite && (
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="user-create">
              {t('users.create')}
            </Button>
          )}
        </Space>
      </div>
      <Table<User>
        rowKey="id"
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={data?.items ?? []}
        onRow={(u) => rowTestId(`user-row-${u.username}`)}
        data-testid="users-table"
        pagination={{
          current: page,
          pageSize,
          total: data?.total ?? 0,
          showSizeChanger: true,
          showTotal: (n) => t('common.total', { n }),
          onChange: (p, s) => {
            setPage(p);
            setPageSize(s);
          },
        }}
      />
      {editing && (
        <UserModal
          user={editing === 'new' ? null : editing}
          roles={roles}
          onClose={(changed) => {
            setEditing(null);
            if (changed) load();
          }}
        />
      )}
      {resetting && <ResetPasswordModal user={resetting} onClose={() => setResetting(null)} />}
    </>
  );
}

interface UserFormValues {
  username: string;
  password?: string;
  display_name?: string;
  email?: string;
  roles: string[];
}

function UserModal({ user, roles, onClose }: { user: User | null; roles: Role[]; onClose: (changed: boolean) => void }) {
  const t = useT();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<UserFormValues>();
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    let v: UserFormValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      if (user) {
        await api.put<User>(`/users/${encodeURIComponent(user.id)}`, {
          display_name: v.display_name ?? '',
          email: v.email ?? '',
          roles: v.roles ?? [],
        });
        message.success(t('users.updated'));
      } else {
        const body: Record<string, unknown> = {
          username: v.username.trim(),
          password: v.password,
          roles: v.roles ?? [],
        };
        if (v.display_name) body.display_name = v.display_name;
        if (v.email) body.email = v.email;
        await api.post<User>('/users', body);
        message.success(t('users.created', { name: v.username.trim() }));
      }
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
      title={user ? t('users.editTitle', { name: user.username }) : t('users.createTitle')}
      onCancel={() => onClose(false)}
      onOk={submit}
      okText={user ? t('common.save') : t('common.create')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'user-form-submit' }}
      destroyOnHidden
      maskClosable={false}
    >
      <Form
        form={form}
        layout="vertical"
        requiredMark="optional"
        initialValues={
          user
            ? { username: user.username, display_name: user.display_name, email: user.email, roles: user.roles }
            : { roles: [] }
        }
        onFinish={submit}
      >
        <Form.Item name="username" label={t('users.username')} rules={[{ required: true, message: t('users.required.username') }]}>
          <Input disabled={!!user} autoComplete="off" data-testid="user-form-username" />
        </Form.Item>
        {!user && (
          <Form.Item
            name="password"
            label={t('users.password')}
            extra={t('users.passwordHelp')}
            rules={[{ required: true, message: t('users.required.password') }]}
          >
            <Input.Password autoComplete="new-password" data-testid="user-form-password" />
          </Form.Item>
        )}
        <Form.Item name="display_name" label={t('users.displayName')}>
          <Input data-testid="user-form-display-name" />
        </Form.Item>
        <Form.Item name="email" label={t('users.email')} rules={[{ type: 'email' }]}>
          <Input data-testid="user-form-email" />
        </Form.Item>
        <Form.Item name="roles" label={t('users.roles')}>
          <Select
            mode="multiple"
            allowClear
            data-testid="user-form-roles"
            options={roles.map((r) => ({ value: r.name, label: r.name, title: r.name }))}
            optionRender={(o) => {
              const r = roles.find((x) => x.name === o.value);
              return (
                <span data-testid={`role-option-${String(o.value)}`}>
                  {String(o.value)}
                  {r?.description && (
                    <Typography.Text type="secondary" style={{ marginLeft: 8, fontSize: 12 }}>
                      {r.description}
                    </Typography.Text>
                  )}
                </span>
              );
            }}
          />
        </Form.Item>
        <button type="submit" hidden />
      </Form>
    </Modal>
  );
}

function ResetPasswordModal({ user, onClose }: { user: User; onClose: () => void }) {
  const t = useT();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<{ new_password: string }>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    let v: { new_password: string };
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      await api.post(`/users/${encodeURIComponent(user.id)}/password`, { new_password: v.new_password });
      message.success(t('users.resetDone'));
      onClose();
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      title={t('users.resetTitle', { name: user.username })}
      onCancel={onClose}
      onOk={submit}
      okText={t('users.resetPassword')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'reset-submit' }}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t('users.resetHelp')}</Typography.Paragraph>
      <Form form={form} layout="vertical" onFinish={submit}>
        <Form.Item
          name="new_password"
          label={t('pwd.new')}
          rules={[
            { required: true, message: t('common.required') },
            { min: 8, message: t('pwd.tooShort') },
          ]}
        >
          <Input.Password autoComplete="new-password" data-testid="reset-password" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

// ---------------------------------------------------------------- roles

function RolesTab() {
  const t = useT();
  const can = useCan();
  const { message } = AntApp.useApp();
  const canWrite = can('roles:write');
  const [roles, setRoles] = useState<Role[]>([]);
  const [perms, setPerms] = useState<Permission[]>([]);
  const [loading, setLoading] = useState(false);
  const [editing, setEditing] = useState<Role | 'new' | null>(null);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<{ items: Role[] }>('/roles')
      .then((r) => setRoles(r.items))
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, []);
  useEffect(load, [load]);
  useEffect(() => {
    api
      .get<{ items: Permission[] }>('/permissions')
      .then((r) => setPerms(r.items))
      .catch(() => undefined);
  }, []);

  const remove = async (r: Role) => {
    try {
      await api.del(`/roles/${encodeURIComponent(r.name)}`);
      message.success(t('roles.deleted'));
      load();
    } catch {
      // reported
    }
  };

  const columns: ColumnsType<Role> = [
    {
      title: t('common.name'),
      dataIndex: 'name',
      render: (v: string, r: Role) => (
        <Space>
          <Typography.Text strong>{v}</Typography.Text>
          {r.builtin ? <Tag>{t('roles.builtin')}</Tag> : <Tag color="cyan">{t('roles.custom')}</Tag>}
        </Space>
      ),
    },
    { title: t('common.description'), dataIndex: 'description', render: (v: string) => v || '—' },
    {
      title: t('roles.permissions'),
      dataIndex: 'permissions',
      render: (ps: string[]) => (
        <Tooltip
          title={
            <div style={{ maxWidth: 360 }}>
              {ps.map((p) => (
                <div key={p} className="omp-mono">
                  {p}
                </div>
              ))}
            </div>
          }
        >
          <Tag>{ps.length === 1 ? t('roles.onePermission') : t('roles.nPermissions', { n: ps.length })}</Tag>
        </Tooltip>
      ),
    },
    {
      title: t('roles.hostGroups'),
      dataIndex: 'host_groups',
      render: (hs: string[]) =>
        hs.length === 0 ? (
          <Typography.Text type="secondary">{t('roles.allHosts')}</Typography.Text>
        ) : (
          <Space size={[4, 4]} wrap>
            {hs.map((h) => (
              <Tag key={h}>{h}</Tag>
            ))}
          </Space>
        ),
    },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 140,
      render: (_: unknown, r: Role) =>
        r.builtin || !canWrite ? (
          <Button type="link" size="small" icon={<EyeOutlined />} onClick={() => setEditing(r)} data-testid={`role-view-${r.name}`}>
            {t('roles.view')}
          </Button>
        ) : (
          <Space size={4}>
            <Tooltip title={t('common.edit')}>
              <Button type="text" size="small" icon={<EditOutlined />} onClick={() => setEditing(r)} data-testid={`role-edit-${r.name}`} />
            </Tooltip>
            <Popconfirm
              title={t('roles.deleteConfirm', { name: r.name })}
              okText={t('common.delete')}
              cancelText={t('common.cancel')}
              okButtonProps={{ danger: true, 'data-testid': 'confirm-ok' }}
              onConfirm={() => remove(r)}
            >
              <Button type="text" size="small" danger icon={<DeleteOutlined />} data-testid={`role-delete-${r.name}`} />
            </Popconfirm>
          </Space>
        ),
    },
  ];

  return (
    <>
      <div style={{ display: 'flex', justifyContent: 'flex-end', marginBottom: 16, gap: 8 }}>
        <Button icon={<ReloadOutlined />} onClick={load}>
          {t('common.refresh')}
        </Button>
        {canWrite && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')} data-testid="role-create">
            {t('roles.create')}
          </Button>
        )}
      </div>
      <Table<Role>
        rowKey="name"
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={roles}
        pagination={false}
        onRow={(r) => rowTestId(`role-row-${r.name}`)}
        data-testid="roles-table"
      />
      {editing && (
        <RoleModal
          role={editing === 'new' ? null : editing}
          perms={perms}
          readOnly={editing !== 'new' && (editing.builtin || !canWrite)}
          onClose={(changed) => {
            setEditing(null);
            if (changed) load();
          }}
        />
      )}
    </>
  );
}

interface RoleFormValues {
  name: string;
  description?: string;
  permissions: string[];
  host_groups: string[];
}

function groupPermissions(perms: Permission[], extra: string[]): [string, Permission[]][] {
  const all = [...perms];
  for (const name of extra) if (!all.some((p) => p.name === name)) all.push({ name, description: '' });
  const groups = new Map<string, Permission[]>();
  for (const p of all) {
    const prefix = p.name.includes(':') ? p.name.split(':')[0] : p.name;
    const g = groups.get(prefix) ?? [];
    g.push(p);
    groups.set(prefix, g);
  }
  return [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

function RoleModal({
  role,
  perms,
  readOnly,
  onClose,
}: {
  role: Role | null;
  perms: Permission[];
  readOnly: boolean;
  onClose: (changed: boolean) => void;
}) {
  const t = useT();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<RoleFormValues>();
  const [busy, setBusy] = useState(false);
  const groups = useMemo(() => groupPermissions(perms, role?.permissions ?? []), [perms, role]);

  const submit = async () => {
    if (readOnly) return onClose(false);
    let v: RoleFormValues;
    try {
      v = await form.validateFields();
    } catch {
      return;
    }
    setBusy(true);
    try {
      const body = { description: v.description ?? '', permissions: v.permissions ?? [], host_groups: v.host_groups ?? [] };
      if (role) await api.put<Role>(`/roles/${encodeURIComponent(role.name)}`, body);
      else await api.post<Role>('/roles', { name: v.name.trim(), ...body });
      message.success(t('roles.saved'));
      onClose(true);
    } catch {
      // reported
    } finally {
      setBusy(false);
    }
  };

  const title = !role ? t('roles.createTitle') : readOnly ? t('roles.viewTitle', { name: role.name }) : t('roles.editTitle', { name: role.name });

  return (
    <Modal
      open
      width={720}
      title={title}
      onCancel={() => onClose(false)}
      onOk={submit}
      okText={readOnly ? t('common.close') : role ? t('common.save') : t('common.create')}
      cancelText={t('common.cancel')}
      cancelButtonProps={readOnly ? { style: { display: 'none' } } : undefined}
      confirmLoading={busy}
      okButtonProps={{ 'data-testid': 'role-form-submit' }}
      destroyOnHidden
      maskClosable={readOnly}
    >
      <Form
        form={form}
        layout="vertical"
        disabled={readOnly}
        initialValues={
          role
            ? { name: role.name, description: role.description, permissions: role.permissions, host_groups: role.host_groups }
            : { permissions: [], host_groups: [] }
        }
      >
        <Row gutter={16}>
          <Col span={10}>
            <Form.Item name="name" label={t('common.name')} rules={[{ required: true, message: t('roles.required.name') }]}>
              <Input disabled={!!role || readOnly} data-testid="role-form-name" />
            </Form.Item>
          </Col>
          <Col span={14}>
            <Form.Item name="description" label={t('common.description')}>
              <Input data-testid="role-form-description" />
            </Form.Item>
          </Col>
        </Row>
        <Form.Item name="host_groups" label={t('roles.hostGroups')} extra={t('roles.hostGroupsHelp')}>
          <Select mode="tags" open={false} suffixIcon={null} placeholder={t('roles.allHosts')} data-testid="role-form-host-groups" />
        </Form.Item>
        <Divider titlePlacement="start" plain style={{ margin: '8px 0 12px' }}>
          {t('roles.permissions')}
        </Divider>
        <Form.Item name="permissions" noStyle>
          <Checkbox.Group style={{ width: '100%', display: 'block' }}>
            <div style={{ maxHeight: 360, overflow: 'auto', paddingRight: 8 }}>
              {groups.map(([prefix, ps]) => (
                <div key={prefix} style={{ marginBottom: 12 }}>
                  <Typography.Text strong style={{ textTransform: 'capitalize' }}>
                    {prefix}
                  </Typography.Text>
                  <Row gutter={[8, 4]} style={{ marginTop: 4 }}>
                    {ps.map((p) => (
                      <Col span={12} key={p.name}>
                        <Checkbox value={p.name} data-testid={`perm-${p.name}`}>
                          <span className="omp-mono" style={{ fontSize: 12 }}>
                            {p.name}
                          </span>
                          {p.description && (
                            <Typography.Text type="secondary" style={{ fontSize: 12, marginLeft: 6 }}>
                              {p.description}
                            </Typography.Text>
                          )}
                        </Checkbox>
                      </Col>
                    ))}
                  </Row>
                </div>
              ))}
            </div>
          </Checkbox.Group>
        </Form.Item>
      </Form>
    </Modal>
  );
}
