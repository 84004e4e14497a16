import { describe, expect, it } from 'vitest';
import { delta, MissingSeriesError, parsePrometheusText, sum } from './prometheus-text.ts';

const TEXT = [
  '# HELP dataflow_cache_lookups_total cache lookups by level and result',
  '# TYPE dataflow_cache_lookups_total counter',
  'dataflow_cache_lookups_total{dataflow_cache_level="memory",dataflow_cache_result="hit"} 7',
  'dataflow_cache_lookups_total{dataflow_cache_level="memory",dataflow_cache_result="miss"} 3',
  '# TYPE http_server_request_duration histogram',
  'http_server_request_duration_count{http_route="/api/orgs/:orgId/members",note="a \\"quoted\\" \\\\ path\\nline"} 12',
  '# TYPE dataflow_batch_size histogram',
  '',
].join('\n');

describe('prometheus text', () => {
  const scrape = parsePrometheusText(TEXT);

  it('sums the samples whose labels match', () => {
    expect(sum(scrape, 'dataflow_cache_lookups_total')).toBe(10);
    expect(sum(scrape, 'dataflow_cache_lookups_total', { dataflow_cache_result: 'hit' })).toBe(7);
    expect(sum(scrape, 'dataflow_cache_lookups_total', { dataflow_cache_result: 'stale' })).toBe(0);
  });

  it('unescapes label values', () => {
    const sample = scrape.samples.find((s) => s.name === 'http_server_request_duration_count');
    expect(sample?.labels.note).toBe('a "quoted" \\ path\nline');
    expect(
      sum(scrape, 'http_server_request_duration_count', { note: 'a "quoted" \\ path\nline' }),
    ).toBe(12);
  });

  it('a series that is not there is an error, never 0 (a renamed metric must not pass a gate)', () => {
    expect(() => sum(scrape, 'dataflow_db_queries_per_request_sum')).toThrow(MissingSeriesError);
    expect(() => sum(scrape, 'dataflow_cache_lookup_total')).toThrow(/dataflow_cache_lookup_total/);
    // declared by # TYPE without samples: present, 0
    expect(sum(scrape, 'dataflow_batch_size_count')).toBe(0);
  });

  it('delta: the scrape before the traffic may lack the series, the one after may not', () => {
    const before = parsePrometheusText('');
    expect(delta(before, scrape, 'dataflow_cache_lookups_total')).toBe(10);
    const later = parsePrometheusText(TEXT.replace('} 7', '} 9'));
    expect(delta(scrape, later, 'dataflow_cache_lookups_total')).toBe(2);
    expect(() => delta(scrape, before, 'dataflow_cache_lookups_total')).toThrow(MissingSeriesError);
  });
});
