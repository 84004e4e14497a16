/**
 * Load and storms go to this machine only, unless the user opts in explicitly.
 * Loopback: 127.0.0.0/8, ::1, localhost.
 */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export function assertLoopback(url: string, allowRemote: boolean, flag = '--allow-remote'): void {
  if (!allowRemote && !isLoopbackUrl(url)) {
    throw new RangeError(
      `refusing non-loopback target ${JSON.stringify(url)}; pass ${flag} to send there`,
    );
  }
}
