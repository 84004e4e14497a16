/**
 * The progress line of the long CLIs (`make bench`, `make gate`): elapsed seconds and
 * the current step, rewritten in place on a terminal, one line per step in CI logs.
 */
export function progressLine(stream: NodeJS.WriteStream = process.stderr) {
  const started = performance.now();
  const tty = stream.isTTY === true;
  return {
    update(line: string) {
      const stamp = `[${Math.round((performance.now() - started) / 1000)}s]`;
      if (tty) stream.write(`\r\x1b[2K${stamp} ${line}`);
      else stream.write(`${stamp} ${line}\n`);
    },
    /** Ends the rewritten line so the report starts on a fresh one. */
    done() {
      if (tty) stream.write('\n');
    },
  };
}
