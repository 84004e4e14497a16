import { ClerkProvider, SignIn, useAuth, useClerk } from '@clerk/react';
import { type ReactNode, useMemo } from 'react';
import type { TokenProvider } from './auth.ts';

/**
 * Production auth: Clerk's React SDK. Clerk's hosted components sign the user in; the
 * app asks `getToken()` for the session token of the active organization, exactly as it
 * asks the development sign-in, and the org switcher calls `setActive`.
 */
export function ClerkAuth(props: {
  publishableKey: string;
  children: (provider: TokenProvider) => ReactNode;
}) {
  return (
    <ClerkProvider publishableKey={props.publishableKey}>
      <ClerkTokens>{props.children}</ClerkTokens>
    </ClerkProvider>
  );
}

function ClerkTokens(props: { children: (provider: TokenProvider) => ReactNode }) {
  const auth = useAuth();
  const clerk = useClerk();
  const provider = useMemo<TokenProvider>(
    () => ({
      kind: 'clerk',
      session: () =>
        auth.userId && auth.orgId ? { userId: auth.userId, orgId: auth.orgId } : null,
      getToken: () => auth.getToken(),
      switchOrg: async (orgId) => {
        await clerk.setActive({ organization: orgId });
      },
      signOut: () => void clerk.signOut(),
      // Clerk re-renders this component on every session change
      subscribe: () => () => {},
    }),
    [auth, clerk],
  );
  if (!auth.isLoaded) return null;
  if (!auth.userId) return <SignIn />;
  return <>{props.children(provider)}</>;
}
