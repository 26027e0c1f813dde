// The PromQL box of the metrics explorer with its completion list: metric names (with type and
// help from /metadata when the server keeps them), functions and aggregations the server
// evaluates, label names inside `{…}` (of that metric's series when it is known, else every
// label) and in `by (…)`, label values after `label=`. A plain textarea with a hand-made list
// (↑/↓ move, Enter/Tab insert, Esc closes; Enter runs the query when the list is closed,
// Shift+Enter breaks the line) rather than an editor library: a few kB instead of hundreds.
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { Input, Tag, Typography } from 'antd';
import { useT, type TFunc } from '../i18n';
import { promGet, type Labels } from '../prom';

/** Functions the server evaluates (docs/api-v1.md) with their argument lists, shown as a hint. */
export const FUNCTIONS: Record<string, string> = {
  abs: 'abs(v instant-vector)',
  absent: 'absent(v instant-vector)',
  avg_over_time: 'avg_over_time(v range-vector)',
  ceil: 'ceil(v instant-vector)',
  changes: 'changes(v range-vector)',
  clamp: 'clamp(v instant-vector, min scalar, max scalar)',
  clamp_max: 'clamp_max(v instant-vector, max scalar)',
  clamp_min: 'clamp_min(v instant-vector, min scalar)',
  count_over_time: 'count_over_time(v range-vector)',
  delta: 'delta(v range-vector)',
  deriv: 'deriv(v range-vector)',
  exp: 'exp(v instant-vector)',
  floor: 'floor(v instant-vector)',
  histogram_quantile: 'histogram_quantile(φ scalar, b instant-vector)',
  idelta: 'idelta(v range-vector)',
  increase: 'increase(v range-vector)',
  irate: 'irate(v range-vector)',
  label_join: 'label_join(v instant-vector, dst string, separator string, src_1 string, …)',
  label_replace: 'label_replace(v instant-vector, dst string, replacement string, src string, regex string)',
  last_over_time: 'last_over_time(v range-vector)',
  ln: 'ln(v instant-vector)',
  log10: 'log10(v instant-vector)',
  log2: 'log2(v instant-vector)',
  max_over_time: 'max_over_time(v range-vector)',
  min_over_time: 'min_over_time(v range-vector)',
  predict_linear: 'predict_linear(v range-vector, t scalar)',
  rate: 'rate(v range-vector)',
  resets: 'resets(v range-vector)',
  round: 'round(v instant-vector, to_nearest scalar = 1)',
  scalar: 'scalar(v instant-vector)',
  sort: 'sort(v instant-vector)',
  sort_desc: 'sort_desc(v instant-vector)',
  sqrt: 'sqrt(v instant-vector)',
  sum_over_time: 'sum_over_time(v range-vector)',
  time: 'time()',
  timestamp: 'timestamp(v instant-vector)',
  vector: 'vector(s scalar)',
};

export const AGGREGATIONS: Record<string, string> = {
  sum: 'sum [by|without (labels)] (v instant-vector)',
  avg: 'avg [by|without (labels)] (v instant-vector)',
  min: 'min [by|without (labels)] (v instant-vector)',
  max: 'max [by|without (labels)] (v instant-vector)',
  count: 'count [by|without (labels)] (v instant-vector)',
  group: 'group [by|without (labels)] (v instant-vector)',
  stddev: 'stddev [by|without (labels)] (v instant-vector)',
  stdvar: 'stdvar [by|without (labels)] (v instant-vector)',
  topk: 'topk [by|without (labels)] (k scalar, v instant-vector)',
  bottomk: 'bottomk [by|without (labels)] (k scalar, v instant-vector)',
};

const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset'];
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const MAX_OPTIONS = 50;
/** Series read per metric for its label names and values; more are not worth the wait. */
const MAX_SERIES = 5000;

export type CompletionKind = 'metric' | 'function' | 'aggregation' | 'keyword' | 'label' | 'value';

export interface CompletionContext {
  kind: 'name' | 'label' | 'value';
  /** The completion replaces text[from, to). */
  from: number;
  to: number;
  /** What is typed of the word up to the caret. */
  prefix: string;
  /** For values: the label. */
  label?: string;
  /** For values: the opening quote is typed. */
  quoted?: boolean;
  /** Inside `{…}` of a selector. */
  selector?: boolean;
  /** Inside `metric{…}`: the metric, and the labels already matched there. */
  metric?: string;
  used?: string[];
}

const NAME_CHARS = /[A-Za-z0-9_:]/;

/** What the word at the caret is: a metric/function name, a label name, or a label value (null: nothing to offer). */
export function completionContext(text: string, caret: number): CompletionContext | null {
  const before = text.slice(0, caret);
  let quote: string | null = null;
  let quoteAt = -1;
  let braceAt = -1;
  const parens: { labels: boolean }[] = [];
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
      quoteAt = i;
    } else if (c === '{') braceAt = i;
    else if (c === '}') braceAt = -1;
    else if (c === '(') {
      const word = /([A-Za-z_]+)\s*$/.exec(before.slice(0, i))?.[1] ?? '';
      parens.push({ labels: LABEL_LIST_KEYWORDS.has(word) });
    } else if (c === ')') parens.pop();
    else if (c === '#') return null;
  }
  const inBraces = braceAt >= 0;
  const metric = inBraces ? /([A-Za-z_:][A-Za-z0-9_:]*)\s*$/.exec(before.slice(0, braceAt))?.[1] : undefined;
  const used = inBraces
    ? [...before.slice(braceAt + 1).matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1])
    : undefined;
  if (quote) {
    if (!inBraces) return null;
    const label = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(0, quoteAt))?.[1];
    if (!label) return null;
    // up to and including the closing quote when it is already there (on this line)
    let to = caret;
    for (let i = caret; i < text.length && text[i] !== '\n'; i++) {
      if (text[i] === '\\') i++;
      else if (text[i] === quote) {
        to = i + 1;
        break;
      }
    }
    return { kind: 'value', from: quoteAt + 1, to, prefix: before.slice(quoteAt + 1), label, quoted: true, selector: true, metric, used };
  }
  const word = /[A-Za-z_:][A-Za-z0-9_:]*$/.exec(before)?.[0] ?? '';
  const from = caret - word.length;
  let to = caret;
  while (to < text.length && NAME_CHARS.test(text[to])) to++;
  if (inBraces) {
    const op = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(0, from));
    if (op) return { kind: 'value', from, to, prefix: word, label: op[1], quoted: false, selector: true, metric, used };
    if (/[{,]\s*$/.test(before.slice(0, from))) return { kind: 'label', from, to, prefix: word, selector: true, metric, used };
    return null;
  }
  if (parens.length && parens[parens.length - 1].labels) {
    if (/[(,]\s*$/.test(before.slice(0, from))) return { kind: 'label', from, to, prefix: word };
    return null;
  }
  if (!word || /[0-9]/.test(word[0])) return null;
  // not right after a duration like [5m or inside a number
  if (/[[\d.]$/.test(before.slice(0, from))) return null;
  return { kind: 'name', from, to, prefix: word };
}

export interface Suggestion {
  text: string;
  kind: CompletionKind;
}

/** Candidates starting with the prefix first (an exact match at the very top), then those containing it. */
export function rank(cands: Suggestion[], prefix: string, limit = MAX_OPTIONS): Suggestion[] {
  const p = prefix.toLowerCase();
  const exact: Suggestion[] = [];
  const starts: Suggestion[] = [];
  const contains: Suggestion[] = [];
  const seen = new Set<string>();
  for (const c of cands) {
    const key = `${c.kind}\u0000${c.text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const l = c.text.toLowerCase();
    if (l === p) exact.push(c);
    else if (l.startsWith(p)) starts.push(c);
    else if (p && l.includes(p)) contains.push(c);
  }
  return [...exact, ...starts, ...contains].slice(0, limit);
}

/** A label value as PromQL string content (without the quotes). */
function escapeValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The text after inserting a suggestion, and where the caret goes. */
export function applySuggestion(text: string, ctx: CompletionContext, s: Suggestion): { text: string; caret: number } {
  let insert = s.text;
  let caretOffset: number | null = null;
  const after = text.slice(ctx.to);
  if (s.kind === 'value') {
    insert = `"${escapeValue(s.text)}"`;
    if (ctx.quoted) insert = insert.slice(1);
  } else if ((s.kind === 'function' || s.kind === 'aggregation') && !/^\s*\(/.test(after)) {
    insert += '(';
  } else if (s.kind === 'label' && ctx.selector && !/^\s*(=~|!~|!=|=)/.test(after)) {
    // inside a selector: name="" with the caret between the quotes, ready for the value
    insert += '=""';
    caretOffset = insert.length - 1;
  }
  const out = text.slice(0, ctx.from) + insert + after;
  return { text: out, caret: ctx.from + (caretOffset ?? insert.length) };
}

export interface MetricMeta {
  type: string;
  help: string;
  unit?: string;
}

interface SeriesInfo {
  labels: Map<string, Set<string>>;
}

/** What the completion knows, fetched once (names, labels, metadata) or on first need (a metric's series, a label's values). */
function useCompletionData(ctx: CompletionContext | null) {
  const [metricNames, setMetricNames] = useState<string[]>([]);
  const [labelNames, setLabelNames] = useState<string[]>([]);
  const [meta, setMeta] = useState<Record<string, MetricMeta>>({});
  const [labelValues, setLabelValues] = useState<Record<string, string[]>>({});
  const [series, setSeries] = useState<Record<string, SeriesInfo | null>>({});

  useEffect(() => {
    const c = new AbortController();
    promGet<string[]>('/label/__name__/values', {}, c.signal).then(setMetricNames).catch(() => undefined);
    promGet<string[]>('/labels', {}, c.signal)
      .then((l) => setLabelNames(l.filter((x) => x !== '__name__')))
      .catch(() => undefined);
    // type and help: an older server answers {} or 404; the completion does without
    promGet<Record<string, MetricMeta[]>>('/metadata', {}, c.signal)
      .then((m) => {
        const out: Record<string, MetricMeta> = {};
        for (const [name, list] of Object.entries(m ?? {})) if (Array.isArray(list) && list[0]) out[name] = list[0];
        setMeta(out);
      })
      .catch(() => undefined);
    return () => c.abort();
  }, []);

  const metric = ctx && ctx.kind !== 'name' ? ctx.metric : undefined;
  useEffect(() => {
    if (!metric || metric in series) return;
    setSeries((old) => ({ ...old, [metric]: null }));
    promGet<Labels[]>('/series', { 'match[]': metric })
      .then((list) => {
        const labels = new Map<string, Set<string>>();
        for (const s of list.slice(0, MAX_SERIES)) {
          for (const [k, v] of Object.entries(s)) {
            if (k === '__name__') continue;
            let set = labels.get(k);
            if (!set) labels.set(k, (set = new Set()));
            set.add(v);
          }
        }
        setSeries((old) => ({ ...old, [metric]: { labels } }));
      })
      .catch(() => undefined);
  }, [metric, series]);

  const known = metric ? series[metric] : undefined;
  const wantValues = ctx?.kind === 'value' && ctx.label && !known?.labels.size ? ctx.label : undefined;
  useEffect(() => {
    if (!wantValues || wantValues in labelValues) return;
    setLabelValues((old) => ({ ...old, [wantValues]: [] }));
    promGet<string[]>(`/label/${encodeURIComponent(wantValues)}/values`)
      .then((v) => setLabelValues((old) => ({ ...old, [wantValues]: v })))
      .catch(() => undefined);
  }, [wantValues, labelValues]);

  return { metricNames, labelNames, meta, labelValues, series };
}

export interface PromqlEditorProps {
  value: string;
  onChange: (v: string) => void;
  /** Enter (list closed) or Ctrl+Enter: run the text. */
  onRun: (v: string) => void;
  placeholder?: string;
  /** Bumped by the caller to close the list (e.g. after a run). */
  closeSignal?: number;
}

export default function PromqlEditor({ value, onChange, onRun, placeholder, closeSignal }: PromqlEditorProps) {
  const t = useT();
  const area = useRef<HTMLTextAreaElement | null>(null);
  const list = useRef<HTMLDivElement | null>(null);
  const pendingCaret = useRef<number | null>(null);
  const [caret, setCaret] = useState(0);
  const [focused, setFocused] = useState(false);
  /** Dismissed (Escape, a run, an insertion) until the next edit. */
  const [closed, setClosed] = useState(false);
  const [active, setActive] = useState(0);

  useEffect(() => {
    if (closeSignal) setClosed(true);
  }, [closeSignal]);

  const ctx = useMemo(() => (focused && !closed ? completionContext(value, caret) : null), [value, caret, focused, closed]);
  const data = useCompletionData(ctx);

  const suggestions = useMemo(() => {
    if (!ctx) return [];
    let cands: Suggestion[];
    if (ctx.kind === 'name') {
      if (!ctx.prefix) return [];
      cands = [
        ...data.metricNames.map((m) => ({ text: m, kind: 'metric' as const })),
        ...Object.keys(AGGREGATIONS).map((m) => ({ text: m, kind: 'aggregation' as const })),
        ...Object.keys(FUNCTIONS).map((m) => ({ text: m, kind: 'function' as const })),
        ...KEYWORDS.map((m) => ({ text: m, kind: 'keyword' as const })),
      ];
    } else {
      const known = ctx.metric ? data.series[ctx.metric] : undefined;
      const fromSeries = known && known.labels.size ? known.labels : undefined;
      if (ctx.kind === 'label') {
        const names = fromSeries ? [...fromSeries.keys()].sort() : data.labelNames;
        const used = new Set(ctx.used ?? []);
        cands = names.filter((n) => !used.has(n) || n === ctx.prefix).map((m) => ({ text: m, kind: 'label' as const }));
      } else {
        const label = ctx.label ?? '';
        const values = fromSeries ? [...(fromSeries.get(label) ?? [])].sort() : (data.labelValues[label] ?? []);
        cands = values.map((m) => ({ text: m, kind: 'value' as const }));
      }
    }
    return rank(cands, ctx.prefix);
  }, [ctx, data]);

  const open = !!ctx && suggestions.length > 0;
  const listKey = ctx ? `${ctx.kind}|${ctx.from}|${ctx.prefix}|${suggestions.length}` : '';
  useEffect(() => setActive(0), [listKey]);

  useLayoutEffect(() => {
    if (pendingCaret.current !== null && area.current) {
      const p = pendingCaret.current;
      pendingCaret.current = null;
      area.current.setSelectionRange(p, p);
      setCaret(p);
    }
  }, [value]);

  useEffect(() => {
    list.current?.querySelector('[data-active="true"]')?.scrollIntoView({ block: 'nearest' });
  }, [active, open]);

  const accept = (i: number) => {
    const s = suggestions[i];
    if (!ctx || !s) return;
    const next = applySuggestion(value, ctx, s);
    if (next.text === value) area.current?.setSelectionRange(next.caret, next.caret);
    else pendingCaret.current = next.caret;
    // a label name inside a selector goes on to its values; everything else closes the list
    setClosed(!(s.kind === 'label' && ctx.selector));
    onChange(next.text);
  };

  const syncCaret = () => {
    if (area.current) setCaret(area.current.selectionStart ?? 0);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // an input method (pinyin, …) uses Enter and the arrows while it composes
    if (e.nativeEvent.isComposing || e.keyCode === 229) return;
    const n = suggestions.length;
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      setClosed(true);
      onRun(e.currentTarget.value);
    } else if (open && e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (a + 1) % n);
    } else if (open && e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (a - 1 + n) % n);
    } else if (open && (e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey) {
      e.preventDefault();
      accept(active);
    } else if (open && e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      setClosed(true);
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      setClosed(true);
      onRun(e.currentTarget.value);
    }
  };

  const current = open ? suggestions[Math.min(active, suggestions.length - 1)] : undefined;
  const detail = current ? describe(current, data.meta) : null;

  return (
    <div style={{ position: 'relative', flex: 1, minWidth: 0 }}>
      <Input.TextArea
        ref={(r) => {
          area.current = r?.resizableTextArea?.textArea ?? null;
        }}
        value={value}
        className="omp-promql"
        autoSize={{ minRows: 1, maxRows: 8 }}
        placeholder={placeholder}
        spellCheck={false}
        autoCapitalize="off"
        autoCorrect="off"
        aria-autocomplete="list"
        aria-expanded={open}
        data-testid="promql-input"
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart ?? 0);
          setClosed(false);
        }}
        onKeyDown={onKeyDown}
        onKeyUp={(e) => {
          if (!['ArrowUp', 'ArrowDown', 'Enter', 'Tab', 'Escape'].includes(e.key)) syncCaret();
        }}
        onClick={() => {
          syncCaret();
          setClosed(false);
        }}
        onFocus={() => {
          setFocused(true);
          syncCaret();
        }}
        onBlur={() => setFocused(false)}
      />
      {open && (
        <div className="omp-completions" role="listbox" data-testid="promql-completions" ref={list}>
          <div className="omp-completions-list">
            {suggestions.map((s, i) => (
              <div
                key={`${s.kind}:${s.text}`}
                role="option"
                aria-selected={i === active}
                data-active={i === active}
                data-testid="promql-option"
                data-value={s.text}
                data-kind={s.kind}
                className={`omp-completion${i === active ? ' omp-completion-active' : ''}`}
                // keep the focus (and the caret) in the textarea
                onMouseDown={(e) => e.preventDefault()}
                onMouseEnter={() => setActive(i)}
                onClick={() => accept(i)}
              >
                <span className={`omp-completion-kind omp-kind-${s.kind}`}>{kindLetter(s.kind)}</span>
                <span className="omp-mono omp-completion-text">
                  <Highlight text={s.text} prefix={ctx?.prefix ?? ''} />
                </span>
                {s.kind === 'metric' && data.meta[s.text]?.type ? (
                  <Tag style={{ marginInlineEnd: 0, fontSize: 11, lineHeight: '16px' }}>{data.meta[s.text].type}</Tag>
                ) : null}
                <Typography.Text type="secondary" style={{ fontSize: 12, whiteSpace: 'nowrap' }}>
                  {kindLabel(t, s.kind)}
                </Typography.Text>
              </div>
            ))}
          </div>
          <div className="omp-completions-foot">
            {detail ? (
              <span className={detail.code ? 'omp-mono' : undefined} data-testid="promql-option-detail">
                {detail.text}
              </span>
            ) : (
              <span>{t('explorer.completionKeys')}</span>
            )}
          </div>
        </div>
      )}
    </div>
  );
}

function Highlight({ text, prefix }: { text: string; prefix: string }) {
  const i = prefix ? text.toLowerCase().indexOf(prefix.toLowerCase()) : -1;
  if (i < 0) return <>{text}</>;
  return (
    <>
      {text.slice(0, i)}
      <strong>{text.slice(i, i + prefix.length)}</strong>
      {text.slice(i + prefix.length)}
    </>
  );
}

function describe(s: Suggestion, meta: Record<string, MetricMeta>): { text: string; code: boolean } | null {
  if (s.kind === 'function') return { text: FUNCTIONS[s.text] ?? s.text, code: true };
  if (s.kind === 'aggregation') return { text: AGGREGATIONS[s.text] ?? s.text, code: true };
  if (s.kind === 'metric' && meta[s.text]?.help) {
    const m = meta[s.text];
    return { text: `${m.help}${m.unit ? ` (${m.unit})` : ''}`, code: false };
  }
  return null;
}

function kindLetter(k: CompletionKind): string {
  return { metric: 'M', function: 'F', aggregation: 'A', keyword: 'K', label: 'L', value: 'V' }[k];
}

export function kindLabel(t: TFunc, k: CompletionKind): string {
  switch (k) {
    case 'metric':
      return t('explorer.kindMetric');
    case 'function':
      return t('explorer.kindFunction');
    case 'aggregation':
      return t('explorer.kindAggregation');
    case 'keyword':
      return t('explorer.kindKeyword');
    case 'label':
      return t('explorer.kindLabel');
    default:
      return t('explorer.kindValue');
  }
}
