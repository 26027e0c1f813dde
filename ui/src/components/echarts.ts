// The one place that imports ECharts: only the parts the metric charts use (line chart, grid,
// tooltip, legend, dataZoom, canvas renderer) through `echarts/core`, so the build keeps them in
// their own `echarts` chunk, loaded only by the lazy host metrics card and the metrics explorer.
import * as echarts from 'echarts/core';
import { LineChart } from 'echarts/charts';
import { DataZoomInsideComponent, DataZoomSliderComponent, GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, GridComponent, TooltipComponent, LegendComponent, DataZoomInsideComponent, DataZoomSliderComponent, CanvasRenderer]);

export { echarts };
export type { EChartsType } from 'echarts/core';
