import { describe, expect, it } from 'vitest';
import { defaultCoalesceKey } from './coalesce.ts';
import { pathAndSortedQuery } from './request-key.ts';

const key = (path: string) => pathAndSortedQuery(`http://127.0.0.1:8787${path}`);

describe('pathAndSortedQuery', () => {
  it('one key whatever the order of differently named parameters', () => {
    expect(key('/api/orgs/o1/members?limit=50&cursor=abc')).toBe(
      key('/api/orgs/o1/members?cursor=abc&limit=50'),
    );
    expect(key('/api/orgs/o1/members?limit=50&cursor=abc')).toBe(
      '/api/orgs/o1/members?cursor=abc&limit=50',
    );
  });

  it('keeps the order of a repeated parameter: the answers may differ', () => {
    expect(key('/p?s=a&s=b')).not.toBe(key('/p?s=b&s=a'));
    expect(key('/p?x=1&s=b&s=a')).toBe('/p?s=b&s=a&x=1');
  });

  it('tells paths and queries apart', () => {
    const keys = ['/p', '/p?', '/p?a=1', '/p?a=2', '/q?a=1', '/p/', '/p?a=1&b=2', '/p?a=1&b=3'].map(
      key,
    );
    expect(new Set(keys).size).toBe(keys.length - 1); // '/p' and '/p?' are the same request
    expect(key('/p')).toBe(key('/p?'));
  });

  it('any other URL goes through the URL parser', () => {
    expect(pathAndSortedQuery('http://h/a?b=1#frag')).toBe('/a?b=1');
    expect(pathAndSortedQuery('http://h?b=2&a=1')).toBe('/?a=1&b=2');
  });

  it('is the coalescing default key, after the method', () => {
    const request = new Request('http://h/api/orgs/o1/projects?status=active&limit=5');
    expect(defaultCoalesceKey(request)).toBe('GET /api/orgs/o1/projects?limit=5&status=active');
    expect(defaultCoalesceKey(new Request('http://h/p?s=a&s=b'))).not.toBe(
      defaultCoalesceKey(new Request('http://h/p?s=b&s=a')),
    );
  });
});
