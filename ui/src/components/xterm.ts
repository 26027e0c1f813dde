// The one place that imports xterm.js (and its CSS): the terminal page and the replay player
// both get their terminal from here, so the xterm chunk is loaded only by those lazy chunks.
// xterm 6 renders with its DOM renderer by default (rows are text in `.xterm-rows`), which
// the browser test reads.
import { Terminal, type ITerminalInitOnlyOptions, type ITerminalOptions, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';

export const TERM_THEME: ITheme = {
  background: '#0d1117',
  foreground: '#e6edf3',
  cursor: '#e6edf3',
  cursorAccent: '#0d1117',
  selectionBackground: '#264f78',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

export const TERM_FONT = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

export function createTerminal(opts: ITerminalOptions & ITerminalInitOnlyOptions = {}): { term: Terminal; fit: FitAddon } {
  const term = new Terminal({
    theme: TERM_THEME,
    fontFamily: TERM_FONT,
    fontSize: 14,
    lineHeight: 1.15,
    cursorBlink: true,
    scrollback: 5000,
    ...opts,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  return { term, fit };
}

export type { Terminal };
