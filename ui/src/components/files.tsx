// The "Files" card of the host detail page (files:transfer): upload a file to the host
// (PUT /hosts/{id}/files with the raw bytes and their SHA-256, so a damaged upload is refused)
// and download one (POST /hosts/{id}/files/download; the bytes are checked against the
// X-Content-SHA256 header here before they are saved). Server errors are shown in the card as
// they come: they say what to do.
import { useEffect, useRef, useState } from 'react';
import { Alert, Button, Card, Col, Descriptions, Form, Input, Progress, Row, Space, Typography, Upload } from 'antd';
import { CloudDownloadOutlined, CloudUploadOutlined, InboxOutlined, SaveOutlined, StopOutlined } from '@ant-design/icons';
import { API_BASE, ApiError, csrfHeaders, failedAnswer, queryString, type FileUploaded, type Host } from '../api';
import { useT, type TFunc } from '../i18n';
import { sha256Hex } from '../sha256';
import { fmtBytes } from './hostBits';

/** Fields the server names in `details.field` of a 422 that this form has. */
type UploadField = 'path' | 'mode' | 'owner';
const UPLOAD_FIELDS: UploadField[] = ['path', 'mode', 'owner'];

interface UploadValues {
  path: string;
  mode: string;
  owner: string;
}

const MODE_RE = /^[0-7]{3,4}$/;
const OWNER_NAME = '[A-Za-z0-9_.][A-Za-z0-9_.-]*';
const OWNER_RE = new RegExp(`^${OWNER_NAME}(:${OWNER_NAME})?$`);

type UploadPhase =
  | { kind: 'idle' }
  | { kind: 'hashing' }
  | { kind: 'sending'; sent: number; total: number }
  | { kind: 'writing' };

type UploadResult = { ok: true; file: FileUploaded; localSha: string } | { ok: false; error: ApiError };

type DownloadPhase = { kind: 'idle' } | { kind: 'receiving'; got: number; total: number | null } | { kind: 'verifying' };

type DownloadResult =
  | { ok: true; name: string; size: number; sha256: string; verified: boolean }
  | { ok: false; error: ApiError }
  | { ok: false; mismatch: { got: string; want: string; size: number } };

function pathRules(t: TFunc) {
  return [
    { required: true, whitespace: true, message: t('files.pathRequired') },
    {
      validator: (_: unknown, v: string) => (!v || v.startsWith('/') ? Promise.resolve() : Promise.reject(new Error(t('files.pathAbsolute')))),
    },
  ];
}

/** The error of a failed transfer: the server's message, and its code and status underneath. */
function TransferError({ error, title }: { error: ApiError; title: string }) {
  const t = useT();
  return (
    <Alert
      type="error"
      showIcon
      title={title}
      description={
        <>
          <div data-testid="files-error-message" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
            {error.message}
          </div>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {error.status ? t('files.errorCode', { code: error.code, status: error.status }) : error.code}
          </Typography.Text>
        </>
      }
    />
  );
}

function Sha({ v }: { v: string }) {
  const t = useT();
  return (
    <Typography.Text className="omp-mono" style={{ wordBreak: 'break-all' }} copyable={{ text: v, tooltips: [t('common.copy'), t('common.copied')] }}>
      {v}
    </Typography.Text>
  );
}

function sizeText(t: TFunc, n: number): string {
  return n >= 1024 ? `${fmtBytes(n)} (${t('files.bytes', { n })})` : t('files.bytes', { n });
}

/**
 * A file name to save as: the last part of the requested path (the server's Content-Disposition
 * name drops every character outside ASCII letters, digits and `._-`, so "报告.txt" would become
 * ".txt"), else the server's name, else "download".
 */
function saveName(disposition: string | null, path: string): string {
  const usable = (n: string | undefined) => !!n && n !== '.' && n !== '..';
  const base = (path.split('/').filter(Boolean).pop() ?? '').replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_').trim();
  if (usable(base)) return base;
  const m = disposition ? /filename="([^"]*)"/i.exec(disposition) : null;
  const fromHeader = m?.[1]?.trim();
  return usable(fromHeader) ? (fromHeader as string) : 'download';
}

function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // the browser has taken the URL once the click is handled; keep it a while for slow starts
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function UploadPane({ host }: { host: Host }) {
  const t = useT();
  const [form] = Form.useForm<UploadValues>();
  const [file, setFile] = useState<File | null>(null);
  const [fileError, setFileError] = useState(false);
  const [phase, setPhase] = useState<UploadPhase>({ kind: 'idle' });
  const [result, setResult] = useState<UploadResult | null>(null);
  const autoPath = useRef('');
  const xhrRef = useRef<XMLHttpRequest | null>(null);
  const cancelled = useRef(false);
  const busy = phase.kind !== 'idle';

  useEffect(() => () => xhrRef.current?.abort(), []);

  const pick = (f: File) => {
    setFile(f);
    setFileError(false);
    setResult(null);
    // follow the file name until the user types a path of their own
    const cur = (form.getFieldValue('path') as string | undefined) ?? '';
    if (!cur.trim() || cur === autoPath.current) {
      const p = `/tmp/${f.name.replace(/\//g, '_')}`;
      autoPath.current = p;
      form.setFieldValue('path', p);
      form.validateFields(['path']).catch(() => undefined);
    }
  };

  const send = async (v: UploadValues, f: File): Promise<{ file: FileUploaded; localSha: string }> => {
    setPhase({ kind: 'hashing' });
    const bytes = await f.arrayBuffer();
    const sha = await sha256Hex(bytes);
    if (cancelled.current) throw new ApiError(0, 'cancelled', t('files.cancelled'));
    const q = queryString({ path: v.path.trim(), mode: v.mode.trim(), owner: v.owner?.trim() });
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhrRef.current = xhr;
      xhr.open('PUT', `${API_BASE}/hosts/${encodeURIComponent(String(host.id))}/files${q}`);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.setRequestHeader('X-Content-SHA256', sha);
      for (const [k, val] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, val);
      xhr.upload.onprogress = (e) => setPhase({ kind: 'sending', sent: e.loaded, total: e.lengthComputable ? e.total : bytes.byteLength });
      // every byte is out: the server now hands the file to the agent, which writes and checks it
      xhr.upload.onload = () => setPhase({ kind: 'writing' });
      xhr.onload = () => {
        xhrRef.current = null;
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve({ file: JSON.parse(xhr.responseText) as FileUploaded, localSha: sha });
          } catch {
            reject(new ApiError(xhr.status, 'bad_answer', t('files.badAnswer')));
          }
        } else {
          reject(failedAnswer(xhr.status, xhr.statusText, xhr.responseText, { silent: true }));
        }
      };
      xhr.onerror = () => {
        xhrRef.current = null;
        reject(new ApiError(0, 'network_error', t('files.networkError')));
      };
      xhr.onabort = () => {
        xhrRef.current = null;
        reject(new ApiError(0, 'cancelled', t('files.cancelled')));
      };
      setPhase({ kind: 'sending', sent: 0, total: bytes.byteLength });
      xhr.send(bytes);
    });
  };

  const submit = async () => {
    let v: UploadValues;
    try {
      v = await form.validateFields();
    } catch {
      if (!file) setFileError(true);
      return;
    }
    if (!file) {
      setFileError(true);
      return;
    }
    cancelled.current = false;
    setResult(null);
    try {
      setResult({ ok: true, ...(await send(v, file)) });
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'error', e instanceof Error ? e.message : String(e));
      setResult({ ok: false, error: err });
      const field = err.details?.field;
      if (err.status === 422 && typeof field === 'string' && (UPLOAD_FIELDS as string[]).includes(field)) {
        form.setFields([{ name: field as UploadField, errors: [err.message] }]);
      }
    } finally {
      setPhase({ kind: 'idle' });
    }
  };

  const cancel = () => {
    cancelled.current = true;
    xhrRef.current?.abort();
  };

  const pct =
    phase.kind === 'sending' ? (phase.total > 0 ? Math.floor((phase.sent / phase.total) * 100) : 0) : phase.kind === 'writing' ? 100 : 0;

  return (
    <div data-testid="files-upload">
      <Typography.Title level={5} style={{ marginTop: 0 }}>
        <CloudUploadOutlined /> {t('files.upload')}
      </Typography.Title>
      <Upload.Dragger
        multiple={false}
        maxCount={1}
        disabled={busy}
        beforeUpload={(f) => {
          pick(f);
          return false;
        }}
        fileList={file ? [{ uid: 'picked', name: `${file.name} (${fmtBytes(file.size)})`, status: 'done' }] : []}
        onRemove={() => {
          setFile(null);
          return true;
        }}
        data-testid="files-upload-input"
      >
        <p className="ant-upload-drag-icon">
          <InboxOutlined />
        </p>
        <p className="ant-upload-text">{t('files.drop')}</p>
        <p className="ant-upload-hint">{t('files.dropHint')}</p>
      </Upload.Dragger>
      {fileError && !file ? (
        <Typography.Text type="danger" data-testid="files-upload-nofile">
          {t('files.noFile')}
        </Typography.Text>
      ) : null}
      <Form<UploadValues>
        form={form}
        layout="vertical"
        requiredMark={false}
        initialValues={{ path: '', mode: '0644', owner: '' }}
        style={{ marginTop: 16 }}
        onFinish={submit}
        disabled={busy}
      >
        <Form.Item name="path" label={t('files.path')} rules={pathRules(t)} extra={t('files.pathHelp')}>
          <Input className="omp-mono" placeholder="/tmp/file.txt" autoComplete="off" spellCheck={false} data-testid="files-upload-path" />
        </Form.Item>
        <Row gutter={12}>
          <Col xs={24} sm={8}>
            <Form.Item
              name="mode"
              label={t('files.mode')}
              rules={[
                { required: true, message: t('files.modeInvalid') },
                { pattern: MODE_RE, message: t('files.modeInvalid') },
              ]}
            >
              <Input className="omp-mono" placeholder="0644" autoComplete="off" maxLength={4} data-testid="files-upload-mode" />
            </Form.Item>
          </Col>
          <Col xs={24} sm={16}>
            <Form.Item
              name="owner"
              label={t('files.ownerOptional')}
              rules={[
                { pattern: OWNER_RE, message: t('files.ownerInvalid') },
                { max: 64, message: t('files.ownerInvalid') },
              ]}
              extra={t('files.ownerHelp')}
            >
              <Input className="omp-mono" placeholder="user:group" autoComplete="off" spellCheck={false} data-testid="files-upload-owner" />
            </Form.Item>
          </Col>
        </Row>
        <Space wrap>
          <Button type="primary" htmlType="submit" icon={<CloudUploadOutlined />} loading={busy} disabled={false} data-testid="files-upload-submit">
            {t('files.uploadSubmit')}
          </Button>
          {busy && phase.kind !== 'writing' ? (
            <Button icon={<StopOutlined />} onClick={cancel} disabled={false} data-testid="files-upload-cancel">
              {t('common.cancel')}
            </Button>
          ) : null}
        </Space>
      </Form>
      {busy ? (
        <div style={{ marginTop: 12 }} data-testid="files-upload-progress" data-phase={phase.kind}>
          <Progress percent={pct} status="active" size="small" />
          <Typography.Text type="secondary">
            {phase.kind === 'hashing'
              ? t('files.hashing')
              : phase.kind === 'sending'
                ? t('files.sending', { sent: fmtBytes(phase.sent), total: fmtBytes(phase.total) })
                : t('files.writing', { host: host.hostname })}
          </Typography.Text>
        </div>
      ) : null}
      {result ? (
        <div style={{ marginTop: 12 }} data-testid="files-upload-result" data-status={result.ok ? 'ok' : 'error'}>
          {result.ok ? (
            <Alert
              type={result.file.sha256 === result.localSha ? 'success' : 'warning'}
              showIcon
              title={t('files.uploaded', { path: result.file.path, host: host.hostname })}
              description={
                <Descriptions size="small" column={1}>
                  <Descriptions.Item label={t('files.size')}>
                    <span data-testid="files-upload-size">{sizeText(t, result.file.size)}</span>
                  </Descriptions.Item>
                  <Descriptions.Item label={t('files.sha256')}>
                    <span data-testid="files-upload-sha256">
                      <Sha v={result.file.sha256} />
                    </span>
                  </Descriptions.Item>
                  <Descriptions.Item label={t('files.mode')}>
                    <span className="omp-mono">{result.file.mode}</span>
                  </Descriptions.Item>
                  <Descriptions.Item label={t('files.owner')}>
                    {result.file.owner ? <span className="omp-mono">{result.file.owner}</span> : t('files.ownerDefault')}
                  </Descriptions.Item>
                  {result.file.sha256 !== result.localSha ? (
                    <Descriptions.Item label={t('files.localSha')}>
                      <Sha v={result.localSha} />
                    </Descriptions.Item>
                  ) : null}
                </Descriptions>
              }
            />
          ) : (
            <TransferError error={result.error} title={t('files.uploadFailed')} />
          )}
        </div>
      ) : null}
    </div>
  );
}

function DownloadPane({ host }: { host: Host }) {
  const t = useT();
  const [form] = Form.useForm<{ path: string }>();
  const [phase, setPhase] = useState<DownloadPhase>({ kind: 'idle' });
  const [result, setResult] = useState<DownloadResult | null>(null);
  const saved = useRef<{ blob: Blob; name: string } | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const busy = phase.kind !== 'idle';

  useEffect(() => () => abortRef.current?.abort(), []);

  const fetchFile = async (path: string): Promise<DownloadResult> => {
    const ac = new AbortController();
    abortRef.current = ac;
    setPhase({ kind: 'receiving', got: 0, total: null });
    let res: Response;
    try {
      res = await fetch(`${API_BASE}/hosts/${encodeURIComponent(String(host.id))}/files/download`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/octet-stream, application/json', ...csrfHeaders() },
        body: JSON.stringify({ path }),
        signal: ac.signal,
      });
    } catch (e) {
      if (ac.signal.aborted) throw new ApiError(0, 'cancelled', t('files.cancelled'));
      throw new ApiError(0, 'network_error', `${t('files.networkError')} (${e instanceof Error ? e.message : String(e)})`);
    }
    if (!res.ok) {
      throw failedAnswer(res.status, res.statusText, await res.text().catch(() => ''), { silent: true });
    }
    const lenHeader = Number(res.headers.get('Content-Length'));
    const total = Number.isFinite(lenHeader) && lenHeader > 0 ? lenHeader : null;
    const chunks: Uint8Array[] = [];
    let got = 0;
    try {
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          got += value.byteLength;
          setPhase({ kind: 'receiving', got, total });
        }
      } else {
        const b = new Uint8Array(await res.arrayBuffer());
        chunks.push(b);
        got = b.byteLength;
      }
    } catch (e) {
      if (ac.signal.aborted) throw new ApiError(0, 'cancelled', t('files.cancelled'));
      throw new ApiError(0, 'network_error', `${t('files.networkError')} (${e instanceof Error ? e.message : String(e)})`);
    }
    abortRef.current = null;
    setPhase({ kind: 'verifying' });
    const bytes = new Uint8Array(got);
    let off = 0;
    for (const c of chunks) {
      bytes.set(c, off);
      off += c.byteLength;
    }
    const sha = await sha256Hex(bytes);
    const want = (res.headers.get('X-Content-SHA256') ?? '').trim().toLowerCase();
    if (want && want !== sha) return { ok: false, mismatch: { got: sha, want, size: got } };
    const name = saveName(res.headers.get('Content-Disposition'), path);
    const blob = new Blob([bytes], { type: 'application/octet-stream' });
    saved.current = { blob, name };
    saveBlob(blob, name);
    return { ok: true, name, size: got, sha256: sha, verified: !!want };
  };

  const submit = async ({ path }: { path: string }) => {
    setResult(null);
    saved.current = null;
    try {
      setResult(await fetchFile(path.trim()));
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'error', e instanceof Error ? e.message : String(e));
      setResult({ ok: false, error: err });
      const field = err.details?.field;
      if (err.status === 422 && field === 'path') form.setFields([{ name: 'path', errors: [err.message] }]);
    } finally {
      abortRef.current = null;
      setPhase({ kind: 'idle' });
    }
  };

  const pct = phase.kind === 'receiving' && phase.total ? Math.min(100, Math.floor((phase.got / phase.total) * 100)) : phase.kind === 'verifying' ? 100 : 0;

  return (
    <div data-testid="files-download">
      <Typography.Title level={5} style={{ marginTop: 0 }}>
        <CloudDownloadOutlined /> {t('files.download')}
      </Typography.Title>
      <Typography.Paragraph type="secondary">{t('files.downloadHelp')}</Typography.Paragraph>
      <Form<{ path: string }> form={form} layout="vertical" requiredMark={false} onFinish={submit} disabled={busy} initialValues={{ path: '' }}>
        <Form.Item name="path" label={t('files.downloadPath')} rules={pathRules(t)}>
          <Input className="omp-mono" placeholder="/etc/hostname" autoComplete="off" spellCheck={false} data-testid="files-download-path" />
        </Form.Item>
        <Space wrap>
          <Button type="primary" htmlType="submit" icon={<CloudDownloadOutlined />} loading={busy} disabled={false} data-testid="files-download-submit">
            {t('files.downloadSubmit')}
          </Button>
          {phase.kind === 'receiving' ? (
            <Button icon={<StopOutlined />} onClick={() => abortRef.current?.abort()} disabled={false} data-testid="files-download-cancel">
              {t('common.cancel')}
            </Button>
          ) : null}
        </Space>
      </Form>
      {busy ? (
        <div style={{ marginTop: 12 }} data-testid="files-download-progress" data-phase={phase.kind}>
          {phase.kind === 'verifying' || (phase.kind === 'receiving' && phase.total) ? (
            <Progress percent={pct} status="active" size="small" />
          ) : null}
          <Typography.Text type="secondary">
            {phase.kind === 'verifying'
              ? t('files.verifying')
              : phase.kind === 'receiving' && phase.got > 0
                ? t('files.receiving', { got: fmtBytes(phase.got) })
                : t('files.reading', { host: host.hostname })}
          </Typography.Text>
        </div>
      ) : null}
      {result ? (
        <div style={{ marginTop: 12 }} data-testid="files-download-result" data-status={result.ok ? 'ok' : 'error'}>
          {result.ok ? (
            <Alert
              type={result.verified ? 'success' : 'warning'}
              showIcon
              title={t('files.downloaded', { name: result.name })}
              description={
                <>
                  <Descriptions size="small" column={1}>
                    <Descriptions.Item label={t('files.size')}>
                      <span data-testid="files-download-size">{sizeText(t, result.size)}</span>
                    </Descriptions.Item>
                    <Descriptions.Item label={t('files.sha256')}>
                      <span data-testid="files-download-sha256">
                        <Sha v={result.sha256} />
                      </span>
                    </Descriptions.Item>
                  </Descriptions>
                  <Space wrap>
                    <Typography.Text type={result.verified ? 'success' : 'warning'}>
                      {result.verified ? t('files.verified') : t('files.noChecksum')}
                    </Typography.Text>
                    <Button
                      size="small"
                      icon={<SaveOutlined />}
                      onClick={() => saved.current && saveBlob(saved.current.blob, saved.current.name)}
                      data-testid="files-download-save"
                    >
                      {t('files.saveAgain')}
                    </Button>
                  </Space>
                </>
              }
            />
          ) : 'mismatch' in result ? (
            <Alert
              type="error"
              showIcon
              title={t('files.mismatchTitle')}
              description={
                <>
                  <div data-testid="files-error-message">{t('files.mismatch', { size: sizeText(t, result.mismatch.size) })}</div>
                  <Descriptions size="small" column={1}>
                    <Descriptions.Item label={t('files.shaReceived')}>
                      <Sha v={result.mismatch.got} />
                    </Descriptions.Item>
                    <Descriptions.Item label={t('files.shaExpected')}>
                      <Sha v={result.mismatch.want} />
                    </Descriptions.Item>
                  </Descriptions>
                </>
              }
            />
          ) : (
            <TransferError error={result.error} title={t('files.downloadFailed')} />
          )}
        </div>
      ) : null}
    </div>
  );
}

/** The "Files" card: upload on the left, download on the right (stacked on narrow screens). */
export function FilesCard({ host }: { host: Host }) {
  const t = useT();
  return (
    <Card title={t('files.title')} data-testid="files-card">
      <Typography.Paragraph type="secondary" style={{ marginTop: 0 }}>
        {t('files.intro')}
      </Typography.Paragraph>
      {host.status !== 'online' && <Typography.Paragraph type="warning">{t('files.offline')}</Typography.Paragraph>}
      <Row gutter={[32, 24]}>
        <Col xs={24} xl={12}>
          <UploadPane host={host} />
        </Col>
        <Col xs={24} xl={12}>
          <DownloadPane host={host} />
        </Col>
      </Row>
    </Card>
  );
}
