// Vite build of the OMP web UI. The production build goes to ../ui-dist, which the
// Rust server embeds with rust-embed; scripts/precompress.mjs adds .gz siblings afterwards.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const backend = process.env.OMP_DEV_BACKEND ?? 'http://127.0.0.1:19001';
const outDir = process.env.OMP_UI_OUT_DIR ?? fileURLToPath(new URL('../ui-dist', import.meta.url));

export default defineConfig({
  base: '/',
  oxc: {
    jsx: { runtime: 'automatic' },
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: false },
      '/healthz': { target: backend, changeOrigin: false },
    },
  },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      onwarn(warning, defaultHandler) {
        // antd ships "use client" directives, meaningless in a client-only bundle
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        defaultHandler(warning);
      },
      output: {
        codeSplitting: {
          groups: [
            { name: 'react', test: /node_modules[\\/](react|react-dom|scheduler|react-router|react-router-dom)[\\/]/, priority: 20 },
            // xterm.js: only the terminal page and the replay player (both lazy) load it
            { name: 'xterm', test: /node_modules[\\/]@xterm[\\/]|src[\\/]components[\\/]xterm\.ts$/, priority: 15 },
            // ECharts (core + the parts used): only the host metrics card and the explorer (both lazy) load it
            { name: 'echarts', test: /node_modules[\\/](echarts|zrender|tslib)[\\/]|src[\\/]components[\\/]echarts\.ts$/, priority: 15 },
            { name: 'antd', test: /node_modules[\\/](antd|@ant-design|@rc-component|rc-[^\\/]+|@emotion|dayjs|@babel[\\/]runtime|classnames|clsx)[\\/]/, priority: 10 },
          ],
        },
      },
    },
  },
});
