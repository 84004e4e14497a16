import { readFileSync } from 'node:fs';

/**
 * What a process has used: the harness's meters of its servers (Linux `/proc`) and of
 * itself (the load generator).
 */

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;

/** CPU time (user + system) process `pid` has used so far, ms (Linux `/proc`, 10 ms ticks). */
export function processCpuMs(pid: number): number {
  // fields after the parenthesized command name: state is the 3rd, utime the 14th, stime the 15th
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return Number(kb ?? Number.NaN) * 1024;
}

/** CPU time (user + system) this process has used so far, ms. */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
