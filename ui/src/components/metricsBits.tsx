// Pieces shared by the host metrics card and the metrics explorer: the time-range picker
// (quick ranges + a custom range), the auto-refresh switch and the refresh clock.
import { useEffect, useState } from 'react';
import { DatePicker, Select, Space, Switch, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useT, type MsgKey } from '../i18n';
import { RANGE_PRESETS, resolveRange, type TimeRange } from '../prom';

/** Every `ms` while `on` (and the page is visible), the returned number grows by one. */
export function useTicker(on: boolean, ms = 15000): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!on) return;
    const iv = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') setTick((n) => n + 1);
    }, ms);
    return () => window.clearInterval(iv);
  }, [on, ms]);
  return tick;
}

/** A range as text for the URL ("3600", or "start-end" in Unix seconds) and back. */
export function rangeToParam(r: TimeRange): string {
  return r.kind === 'last' ? String(r.secs) : `${Math.round(r.start)}-${Math.round(r.end)}`;
}

export function rangeFromParam(s: string | null): TimeRange | null {
  if (!s) return null;
  const abs = /^(\d+)-(\d+)$/.exec(s);
  if (abs) {
    const start = Number(abs[1]);
    const end = Number(abs[2]);
    return end > start ? { kind: 'abs', start, end } : null;
  }
  const secs = Number(s);
  return Number.isInteger(secs) && secs > 0 ? { kind: 'last', secs } : null;
}

export function RangePicker({ value, onChange }: { value: TimeRange; onChange: (r: TimeRange) => void }) {
  const t = useT();
  const [custom, setCustom] = useState(value.kind === 'abs');
  const selectValue = custom || value.kind === 'abs' ? 'custom' : String(value.secs);
  const known = value.kind === 'last' && (RANGE_PRESETS as readonly number[]).includes(value.secs);
  const options = [
    ...RANGE_PRESETS.map((s) => ({ value: String(s), label: t(`metrics.range.${s}` as MsgKey) })),
    ...(value.kind === 'last' && !known ? [{ value: String(value.secs), label: t('metrics.range.lastN', { n: value.secs }) }] : []),
    { value: 'custom', label: t('metrics.range.custom') },
  ];
  const [from, to] = resolveRange(value);
  return (
    <Space size={8} wrap data-testid="metrics-range">
      <Select
        value={selectValue}
        options={options}
        style={{ width: 170 }}
        aria-label={t('metrics.rangeLabel')}
        data-testid="metrics-range-select"
        onChange={(v: string) => {
          if (v === 'custom') {
            setCustom(true);
            onChange({ kind: 'abs', start: Math.round(from), end: Math.round(to) });
          } else {
            setCustom(false);
            onChange({ kind: 'last', secs: Number(v) });
          }
        }}
      />
      {selectValue === 'custom' && (
        <DatePicker.RangePicker
          showTime={{ format: 'HH:mm' }}
          format="YYYY-MM-DD HH:mm"
          allowClear={false}
          placeholder={[t('metrics.start'), t('metrics.end')]}
          value={[dayjs.unix(from), dayjs.unix(to)]}
          disabledDate={(d: Dayjs) => d.isAfter(dayjs().endOf('day'))}
          data-testid="metrics-range-custom"
          onChange={(v) => {
            const [a, b] = v ?? [];
            if (a && b && b.isAfter(a)) onChange({ kind: 'abs', start: a.unix(), end: b.unix() });
          }}
        />
      )}
    </Space>
  );
}

export function AutoRefresh({ on, onChange, disabled }: { on: boolean; onChange: (v: boolean) => void; disabled?: boolean }) {
  const t = useT();
  return (
    <Space size={6}>
      <Switch size="small" checked={on && !disabled} disabled={disabled} onChange={onChange} data-testid="metrics-auto" />
      <Typography.Text type={disabled ? 'secondary' : undefined} style={{ fontSize: 13 }}>
        {t('metrics.autoRefresh')}
      </Typography.Text>
    </Space>
  );
}

/** "15 s", "5 min", "1 h" for a step. */
export function fmtStep(t: ReturnType<typeof useT>, secs: number): string {
  if (secs % 3600 === 0) return t('metrics.hours', { n: secs / 3600 });
  if (secs % 60 === 0) return t('metrics.minutes', { n: secs / 60 });
  return t('metrics.seconds', { n: secs });
}
