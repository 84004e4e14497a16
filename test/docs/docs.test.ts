import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIGURATION_PAGE, renderConfiguration } from '../../scripts/generate-docs.ts';
import { envSchema } from '../../system/env.ts';
import { METRICS } from '../../system/telemetry/metrics.ts';

describe('docs/', () => {
  it('docs/configuration.md is what `make docs` generates from the env schema', () => {
    expect(readFileSync(CONFIGURATION_PAGE, 'utf8')).toBe(renderConfiguration());
  });

  it('the configuration page lists every variable the app reads', () => {
    const page = readFileSync(CONFIGURATION_PAGE, 'utf8');
    for (const name of Object.keys(envSchema.shape)) expect(page).toContain(`| \`${name}\` |`);
  });

  it('the telemetry page lists every metric the app defines', () => {
    const page = readFileSync('docs/telemetry.md', 'utf8');
    for (const name of Object.values(METRICS)) expect(page, name).toContain(`\`${name}\``);
  });

  it('the README stays a front door (about 8 KB) and every docs/ page is linked from it', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(9 * 1024);
    for (const page of readdirSync('docs')) {
      if (statSync(join('docs', page)).isFile() && page.endsWith('.md')) {
        expect(readme, page).toContain(`docs/${page}`);
      }
    }
  });

  it('relative links in README.md and docs/ point at files that exist', () => {
    const pages = ['README.md', ...readdirSync('docs').map((p) => join('docs', p))];
    for (const page of pages) {
      const text = readFileSync(page, 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const path = join(page === 'README.md' ? '.' : 'docs', target!);
        expect(() => statSync(path), `${page} -> ${target}`).not.toThrow();
      }
    }
  });
});
