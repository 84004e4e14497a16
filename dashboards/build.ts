import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { allDashboards } from './definitions.ts';
import { lintDashboard } from './lint.ts';

/**
 * `make dashboards`: writes every dashboard to `dashboards/json/<name>.json` (what a
 * user's Grafana provisions), after the lint. `--check`: exit 1 when a committed file
 * differs from what the code builds (the test runs the same comparison).
 */
export const JSON_DIR = 'dashboards/json';

export function renderDashboards(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, dashboard] of Object.entries(allDashboards())) {
    const problems = lintDashboard(dashboard);
    if (problems.length > 0) {
      throw new Error(`dashboard ${name} fails the lint:\n  ${problems.join('\n  ')}`);
    }
    files.set(join(JSON_DIR, `${name}.json`), `${JSON.stringify(dashboard, null, 2)}\n`);
  }
  return files;
}

function main(): number {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of renderDashboards()) {
    if (check) {
      let committed = '';
      try {
        committed = readFileSync(file, 'utf8');
      } catch {
        // missing counts as stale
      }
      if (committed !== text) {
        console.error(`${file} is stale: run make dashboards`);
        stale += 1;
      }
    } else {
      writeFileSync(file, text);
      console.log(`wrote ${file}`);
    }
  }
  return stale > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main();
}
