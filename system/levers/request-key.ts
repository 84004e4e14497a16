/**
 * A request's identity for the cache and coalescing keys: its path and its query with the
 * parameters sorted by name, so `?b=2&a=1` and `?a=1&b=2` share a key. The sort is stable
 * (`URLSearchParams.sort`): repeated parameters keep their order, since `?s=a&s=b` and
 * `?s=b&s=a` may answer differently (a handler reads the first). The path is the one Hono
 * routes on, the URL's own text: a URL with no query or one parameter is keyed without
 * parsing it (`new URL` costs about as much as the rest of a cache hit's key work).
 */
export function pathAndSortedQuery(url: string): string {
  const parts = PLAIN_URL.exec(url);
  if (parts === null) {
    const parsed = new URL(url);
    parsed.searchParams.sort();
    return `${parsed.pathname}?${parsed.searchParams}`;
  }
  const [, path, query = ''] = parts;
  if (!query.includes('&')) return `${path}?${query}`;
  const params = new URLSearchParams(query);
  params.sort();
  return `${path}?${params}`;
}

/** scheme://authority, then the path and the query (no fragment) */
const PLAIN_URL = /^[a-z][\w+.-]*:\/\/[^/?#]*(\/[^?#]*)(?:\?([^#]*))?$/i;
