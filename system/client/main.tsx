import { lazy, StrictMode, Suspense } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.tsx';
import { devTokenProvider } from './auth.ts';

// Clerk's SDK is loaded only where it signs in (a publishable key is configured)
const ClerkAuth = lazy(async () => ({ default: (await import('./clerk.tsx')).ClerkAuth }));

import { clientConfigFrom } from './config.ts';
import './style.css';

const config = clientConfigFrom(location.search, sessionStorage);
const clerkKey = import.meta.env.VITE_CLERK_PUBLISHABLE_KEY as string | undefined;
const root = createRoot(document.getElementById('root')!);

root.render(
  <StrictMode>
    {clerkKey ? (
      <Suspense fallback={null}>
        <ClerkAuth publishableKey={clerkKey}>
          {(auth) => <App auth={auth} config={config} />}
        </ClerkAuth>
      </Suspense>
    ) : (
      <App auth={devTokenProvider(sessionStorage)} config={config} />
    )}
  </StrictMode>,
);
