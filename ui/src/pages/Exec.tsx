// Remote execution: pick targets and a command (argv, or a shell line with exec:shell),
// run it, watch the per-host results live, and browse the history of jobs (?job=<id> opens one).
import { useCallback, useEffect, useRef, useState } from 'react';
import { Button, Card, Col, Row, Table, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { ReloadOutlined } from '@ant-design/icons';
import { useSearchParams } from 'react-router-dom';
import { api, type Job, type JobSummary, type Page } from '../api';
import { useT } from '../i18n';
import { fmtTime } from '../session';
import { CommandCell, ExecForm, JobView } from '../components/exec';
import { JobStateTag } from '../components/hostBits';

export default function ExecPage() {
  const t = useT();
  const [params, setParams] = useSearchParams();
  const jobId = params.get('job');
  const [started, setStarted] = useState<Job | null>(null);
  const [historyKey, setHistoryKey] = useState(0);
  const lastState = useRef<string | null>(null);

  const open = (id: string | number) => {
    setParams({ job: String(id) });
    window.scrollTo({ top: 0, behavior: 'smooth' });
  };

  return (
    <div data-testid="exec-page">
      <Row gutter={[16, 16]}>
        <Col xs={24}>
          <Card title={t('exec.title')}>
            <ExecForm
              onStarted={(job) => {
                setStarted(job);
                setParams({ job: String(job.id) });
                setHistoryKey((k) => k + 1);
              }}
            />
          </Card>
        </Col>
        {jobId && (
          <Col xs={24}>
            <JobView
              key={jobId}
              jobId={jobId}
              initial={started && String(started.id) === jobId ? started : null}
              onChange={(j) => {
                // refresh the history when the job finishes
                if (lastState.current === 'running' && j.state !== 'running') setHistoryKey((k) => k + 1);
                lastState.current = j.state;
              }}
            />
          </Col>
        )}
        <Col xs={24}>
          <History refreshKey={historyKey} selected={jobId} onOpen={open} />
        </Col>
      </Row>
    </div>
  );
}

function History({ refreshKey, selected, onOpen }: { refreshKey: number; selected: string | null; onOpen: (id: string | number) => void }) {
  const t = useT();
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(20);
  const [data, setData] = useState<Page<JobSummary> | null>(null);
  const [loading, setLoading] = useState(false);

  const load = useCallback(() => {
    setLoading(true);
    api
      .get<Page<JobSummary>>('/exec', { page, page_size: pageSize })
      .then(setData)
      .catch(() => undefined)
      .finally(() => setLoading(false));
  }, [page, pageSize]);
  useEffect(load, [load, refreshKey]);

  const columns: ColumnsType<JobSummary> = [
    { title: t('exec.createdAt'), dataIndex: 'created_at', width: 170, render: (v: string) => <span style={{ whiteSpace: 'nowrap' }}>{fmtTime(v)}</span> },
    { title: t('exec.createdBy'), dataIndex: 'created_by', width: 130, render: (v: string) => v || '—' },
    { title: t('exec.command'), key: 'command', render: (_: unknown, j) => <CommandCell job={j} /> },
    { title: t('exec.stateCol'), dataIndex: 'state', width: 110, render: (v: JobSummary['state']) => <JobStateTag state={v} /> },
    {
      title: t('exec.hostsCol'),
      key: 'hosts',
      width: 200,
      render: (_: unknown, j) => (
        <span style={{ whiteSpace: 'nowrap' }}>
          {t('exec.summaryText', { ok: j.hosts_ok, failed: j.hosts_failed, total: j.hosts_total })}
        </span>
      ),
    },
    {
      title: t('common.actions'),
      key: 'actions',
      width: 90,
      render: (_: unknown, j) => (
        <Button
          type="link"
          size="small"
          onClick={(e) => {
            e.stopPropagation();
            onOpen(j.id);
          }}
          data-testid={`exec-history-open-${j.id}`}
        >
          {t('exec.open')}
        </Button>
      ),
    },
  ];

  return (
    <Card
      title={t('exec.history')}
      extra={
        <Tooltip title={t('common.refresh')}>
          <Button icon={<ReloadOutlined />} onClick={load} data-testid="exec-history-refresh" />
        </Tooltip>
      }
    >
      <Typography.Paragraph type="secondary" style={{ marginTop: -4 }}>
        {t('exec.historyHelp')}
      </Typography.Paragraph>
      <Table<JobSummary>
        rowKey={(j) => String(j.id)}
        size="middle"
        loading={loading}
        columns={columns}
        dataSource={data?.items ?? []}
        data-testid="exec-history"
        rowClassName={(j) => (String(j.id) === selected ? 'omp-row-selected' : '')}
        onRow={(j) =>
          ({
            'data-testid': `exec-history-row-${j.id}`,
            onClick: () => onOpen(j.id),
            style: { cursor: 'pointer' },
          }) as React.HTMLAttributes<HTMLElement>
        }
        pagination={{
          current: page,
          pageSize,
          total: data?.total ?? 0,
          showSizeChanger: true,
          pageSizeOptions: [10, 20, 50, 100],
          showTotal: (n) => t('common.total', { n }),
          onChange: (p, s) => {
            setPage(p);
            setPageSize(s);
          },
        }}
      />
    </Card>
  );
}
