/**
 * Who the client acts as. The app reads tokens through this one interface: production
 * uses Clerk's React SDK (`clerk.tsx`: `getToken()` of `@clerk/react`), development and
 * the browser tests use the development sign-in (`POST /dev/session`, which the server
 * never mounts in production). Tokens live in memory and sessionStorage (this tab),
 * never in a URL.
 */
export interface Session {
  userId: string;
  orgId: string;
}

export interface TokenProvider {
  readonly kind: 'dev' | 'clerk';
  session(): Session | null;
  /** The current session token (refreshed when it is about to expire), or null. */
  getToken(): Promise<string | null>;
  /** Switches the active organization (the org switcher). */
  switchOrg(orgId: string): Promise<void>;
  signOut(): void;
  /** Called whenever the session changes. */
  subscribe(listener: () => void): () => void;
}

/** What the development sign-in keeps for the tab (also what a harness may put there). */
export interface StoredSession extends Session {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** The tab's sessionStorage key of the development session. */
export const DEV_SESSION_KEY = 'dataflow.dev-session';
/** Re-mint a minute before expiry. */
const REFRESH_MARGIN_MS = 60_000;

/** The development sign-in: tokens minted by the local server with the dev key pair. */
export function devTokenProvider(storage: Storage): TokenProvider & {
  signIn(userId: string, orgId: string): Promise<void>;
} {
  const listeners = new Set<() => void>();
  let current: StoredSession | null = (() => {
    const raw = storage.getItem(DEV_SESSION_KEY);
    return raw ? (JSON.parse(raw) as StoredSession) : null;
  })();
  const changed = () => {
    if (current) storage.setItem(DEV_SESSION_KEY, JSON.stringify(current));
    else storage.removeItem(DEV_SESSION_KEY);
    for (const listener of listeners) listener();
  };
  const mint = async (userId: string, orgId: string): Promise<StoredSession> => {
    const res = await fetch('/dev/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId, orgId }),
    });
    const body = (await res.json()) as {
      token?: string;
      expiresAt?: number;
      error?: { message: string };
    };
    if (!res.ok || !body.token || !body.expiresAt) {
      throw new Error(body.error?.message ?? `sign-in failed: HTTP ${res.status}`);
    }
    return { userId, orgId, token: body.token, expiresAt: body.expiresAt };
  };
  return {
    kind: 'dev',
    session: () => (current ? { userId: current.userId, orgId: current.orgId } : null),
    async getToken() {
      if (!current) return null;
      if (current.expiresAt - Date.now() < REFRESH_MARGIN_MS) {
        current = await mint(current.userId, current.orgId);
        changed();
      }
      return current.token;
    },
    async signIn(userId, orgId) {
      current = await mint(userId, orgId);
      changed();
    },
    async switchOrg(orgId) {
      if (!current) throw new Error('not signed in');
      current = await mint(current.userId, orgId);
      changed();
    },
    signOut() {
      current = null;
      changed();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
