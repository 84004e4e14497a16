import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The servers the tests and the harness start come from Debian's packages, provisioned
 * by `scripts/ensure-tools` (`make tools`, and so `make test` and `make bench`). A
 * missing one is named with the command that installs it, never skipped.
 */
/** `promtool` comes with Debian's prometheus package. */
export function requireTool(command: 'redis-server' | 'prometheus' | 'promtool' | 'wrk'): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    `${command} is not installed: run \`make tools\` (scripts/ensure-tools ${command === 'promtool' ? 'prometheus' : command}), which installs the Debian package`,
  );
}
