// Every module of the platform, in menu order, with the route and icon of each, and which
// of them this UI has a real page for. Whether the server offers a module comes from
// GET /system/info (modules[].available).
import { createContext, useContext, type ReactNode } from 'react';
import {
  AlertOutlined,
  AppstoreOutlined,
  AuditOutlined,
  BookOutlined,
  CloudServerOutlined,
  DashboardOutlined,
  DatabaseOutlined,
  FileSearchOutlined,
  FundProjectionScreenOutlined,
  LineChartOutlined,
  MedicineBoxOutlined,
  RobotOutlined,
  SettingOutlined,
  ShopOutlined,
  TeamOutlined,
  ToolOutlined,
} from '@ant-design/icons';
import type { SystemInfo } from './api';

export type ModuleKey =
  | 'dashboard'
  | 'hosts'
  | 'applications'
  | 'appstore'
  | 'monitoring'
  | 'alerts'
  | 'healing'
  | 'inspection'
  | 'backup'
  | 'tools'
  | 'kb'
  | 'assistant'
  | 'bigscreen'
  | 'users'
  | 'audit'
  | 'settings';

export interface ModuleDef {
  key: ModuleKey;
  path: string;
  icon: ReactNode;
  /** This UI has a real page for the module. */
  hasPage: boolean;
}

export const MODULES: ModuleDef[] = [
  { key: 'dashboard', path: '/', icon: <DashboardOutlined />, hasPage: true },
  { key: 'hosts', path: '/hosts', icon: <CloudServerOutlined />, hasPage: true },
  { key: 'applications', path: '/applications', icon: <AppstoreOutlined />, hasPage: false },
  { key: 'appstore', path: '/appstore', icon: <ShopOutlined />, hasPage: false },
  { key: 'monitoring', path: '/monitoring', icon: <LineChartOutlined />, hasPage: true },
  { key: 'alerts', path: '/alerts', icon: <AlertOutlined />, hasPage: false },
  { key: 'healing', path: '/healing', icon: <MedicineBoxOutlined />, hasPage: false },
  { key: 'inspection', path: '/inspection', icon: <FileSearchOutlined />, hasPage: false },
  { key: 'backup', path: '/backup', icon: <DatabaseOutlined />, hasPage: false },
  { key: 'tools', path: '/tools', icon: <ToolOutlined />, hasPage: false },
  { key: 'kb', path: '/kb', icon: <BookOutlined />, hasPage: false },
  { key: 'assistant', path: '/assistant', icon: <RobotOutlined />, hasPage: false },
  { key: 'bigscreen', path: '/bigscreen', icon: <FundProjectionScreenOutlined />, hasPage: false },
  { key: 'users', path: '/users', icon: <TeamOutlined />, hasPage: true },
  { key: 'audit', path: '/audit', icon: <AuditOutlined />, hasPage: true },
  { key: 'settings', path: '/settings', icon: <SettingOutlined />, hasPage: false },
];

export interface SystemState {
  info: SystemInfo | null;
  /** GET /system/info failed (info stays null). */
  failed?: boolean;
  reload: () => void;
}

export const SystemContext = createContext<SystemState>({ info: null, reload: () => undefined });

export function useSystem(): SystemState {
  return useContext(SystemContext);
}

/** What the menu and dashboard show for a module: the server's word, and a page to show it. */
export function moduleUsable(info: SystemInfo | null, def: ModuleDef): boolean {
  if (!def.hasPage) return false;
  const m = info?.modules?.find((x) => x.key === def.key);
  // Modules with a page that the server does not list (or before info arrives) count as usable.
  return m ? m.available : true;
}
