// A time-series line chart (ECharts) for Prometheus range results: time axis over the whole
// requested range, values formatted by unit on the axis and in the tooltip, legend below, an
// empty state when there is nothing to draw. It resizes with its container (window, menu).
// The container carries `data-testid` and `data-series` (how many series are drawn).
import { useEffect, useMemo, useRef, type ReactNode } from 'react';
import { Empty, Spin } from 'antd';
import { echarts, type EChartsType } from './echarts';
import { fmtValue, type Unit } from '../prom';

export interface ChartSeries {
  name: string;
  /** [ms, value]; null breaks the line. */
  points: [number, number | null][];
}

export interface TimeSeriesChartProps {
  testid: string;
  series: ChartSeries[];
  unit: Unit;
  /** The requested range, Unix seconds (the x axis spans all of it). */
  start: number;
  end: number;
  height?: number;
  /** Stack the series as areas (e.g. CPU time by mode). */
  stacked?: boolean;
  /** Fixed y maximum (100 for percentages of a whole). */
  yMax?: number;
  /** A slider under the chart to zoom the time axis (the explorer); charts always zoom with Ctrl+wheel. */
  slider?: boolean;
  loading?: boolean;
  empty?: ReactNode;
}

const PALETTE = ['#1677ff', '#52c41a', '#fa8c16', '#eb2f96', '#13c2c2', '#722ed1', '#fadb14', '#f5222d', '#2f54eb', '#a0d911', '#fa541c', '#8c8c8c'];

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

function fmtStamp(ms: number, withDate: boolean): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${time}` : time;
}

/** A y interval in whole binary units (1, 2, 2.5 or 5 × 10ⁿ KiB, MiB, …) about a quarter of `max` (1 B for a flat zero). */
function byteInterval(max: number): number {
  if (!(max > 0)) return 1;
  let u = 1;
  while (max / u >= 1024 && u < 1024 ** 5) u *= 1024;
  const raw = max / u / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return Math.max(1, nice * p * u);
}

interface TipParam {
  marker: string;
  seriesName: string;
  value: [number, number | null];
  axisValue: number;
}

export default function TimeSeriesChart(props: TimeSeriesChartProps) {
  const { testid, series, unit, start, end, height = 240, stacked = false, yMax, slider = false, loading = false, empty } = props;
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);
  const legendRows = series.length > 1 ? 1 : 0;
  const bottom = (legendRows ? 28 : 8) + (slider ? 36 : 0);

  useEffect(() => {
    if (!box.current) return;
    const c = echarts.init(box.current, undefined, { renderer: 'canvas' });
    chart.current = c;
    const ro = new ResizeObserver(() => c.resize());
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      c.dispose();
      chart.current = null;
    };
  }, []);

  const option = useMemo(() => {
    const multiDay = end - start > 86400;
    const bytes = unit === 'bytes' || unit === 'bytesPerSec';
    let dataMax = 0;
    if (bytes) for (const s of series) for (const [, v] of s.points) if (v !== null && v > dataMax) dataMax = v;
    return {
      animation: false,
      color: PALETTE,
      grid: { left: 8, right: 16, top: 12, bottom, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
      tooltip: {
        trigger: 'axis',
        confine: true,
        order: 'valueDesc',
        axisPointer: { type: 'line', lineStyle: { color: '#bfbfbf' } },
        formatter: (raw: unknown) => {
          const params = (Array.isArray(raw) ? raw : [raw]) as TipParam[];
          if (!params.length) return '';
          const rows = params
            .filter((p) => p.value && p.value[1] !== null && p.value[1] !== undefined)
            .sort((a, b) => (b.value[1] ?? 0) - (a.value[1] ?? 0));
          const shown = rows.slice(0, 16);
          const more = rows.length - shown.length;
          const head = `<div style="font-weight:600;margin-bottom:4px">${esc(fmtStamp(params[0].axisValue, multiDay))}</div>`;
          const body = shown
            .map(
              (p) =>
                `<div style="display:flex;justify-content:space-between;gap:16px"><span style="max-width:360px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap">${p.marker}${esc(p.seriesName)}</span><b>${esc(fmtValue(p.value[1], unit))}</b></div>`,
            )
            .join('');
          return head + body + (more > 0 ? `<div style="color:#8c8c8c">+${more}</div>` : '');
        },
      },
      legend: legendRows
        ? { type: 'scroll', bottom: slider ? 36 : 0, left: 0, right: 0, icon: 'roundRect', itemWidth: 12, itemHeight: 8, textStyle: { fontSize: 12 } }
        : { show: false },
      dataZoom: [
        { type: 'inside', xAxisIndex: 0, zoomOnMouseWheel: 'ctrl', moveOnMouseWheel: false, moveOnMouseMove: true, filterMode: 'none' },
        ...(slider ? [{ type: 'slider', xAxisIndex: 0, bottom: 6, height: 18, filterMode: 'none', showDataShadow: false, labelFormatter: (v: number) => fmtStamp(v, multiDay) }] : []),
      ],
      xAxis: {
        type: 'time',
        min: start * 1000,
        max: end * 1000,
        axisLine: { lineStyle: { color: '#d9d9d9' } },
        axisLabel: { color: '#8c8c8c', hideOverlap: true },
        splitLine: { show: false },
      },
      yAxis: {
        type: 'value',
        min: 0,
        // bytes: the top is a whole number of intervals; a flat zero line gets a readable 0–4 B axis
        max: yMax ?? (bytes ? (dataMax > 0 ? Math.ceil(dataMax / byteInterval(dataMax)) * byteInterval(dataMax) : 4) : undefined),
        interval: yMax === 100 ? 25 : bytes ? byteInterval(dataMax) : undefined,
        splitNumber: 4,
        axisLabel: { color: '#8c8c8c', formatter: (v: number) => fmtValue(v, unit, 1) },
        splitLine: { lineStyle: { color: '#f0f0f0' } },
      },
      series: series.map((s) => ({
        type: 'line',
        name: s.name,
        data: s.points,
        showSymbol: s.points.length <= 2,
        symbolSize: 4,
        lineStyle: { width: 1.5 },
        emphasis: { focus: 'series', lineStyle: { width: 2 } },
        ...(stacked ? { stack: 'total', areaStyle: { opacity: 0.25 } } : {}),
      })),
    };
  }, [series, unit, start, end, stacked, yMax, slider, legendRows, bottom]);

  useEffect(() => {
    chart.current?.setOption(option, { replaceMerge: ['series'] });
  }, [option]);

  const isEmpty = series.length === 0 || series.every((s) => s.points.length === 0);
  return (
    <div data-testid={testid} data-series={series.length} style={{ position: 'relative', height }}>
      <div ref={box} style={{ position: 'absolute', inset: 0 }} />
      {isEmpty && (
        <div className="omp-chart-overlay">
          {loading ? <Spin /> : <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={empty} />}
        </div>
      )}
    </div>
  );
}
