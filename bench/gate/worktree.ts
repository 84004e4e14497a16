import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GateUsageError } from './types.ts';

/** Git for the gate: the base commit, checked out in a temporary worktree. */
export function git(args: string[], cwd?: string): string {
  return execFileSync('git', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
}

/**
 * The base checkout: a detached worktree. Its dependencies are the head's when the
 * lockfiles match (a symlink, seconds); otherwise `npm ci` there.
 */
export function prepareWorktree(sha: string, progress: (line: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'gate-base-'));
  try {
    git(['worktree', 'add', '--detach', '--force', dir, sha]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new GateUsageError(
      'environment',
      `git worktree add failed: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`,
    );
  }
  if (!existsSync(join(dir, 'system/node.ts'))) {
    removeWorktree(dir);
    throw new GateUsageError('usage', `the base ${sha.slice(0, 10)} has no system/node.ts to run`);
  }
  const sameLock =
    existsSync(join(dir, 'package-lock.json')) &&
    readFileSync(join(dir, 'package-lock.json'), 'utf8') ===
      readFileSync('package-lock.json', 'utf8');
  if (sameLock) {
    symlinkSync(resolve('node_modules'), join(dir, 'node_modules'), 'dir');
  } else {
    progress('base: dependencies differ from the head; npm ci in the worktree');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'ignore' });
  }
  return dir;
}

export function removeWorktree(dir: string) {
  try {
    git(['worktree', 'remove', '--force', dir]);
  } catch {
    rmSync(dir, { recursive: true, force: true });
    git(['worktree', 'prune']);
  }
}

export function resolveCommit(ref: string): string {
  if (!/^[\w./~^@{}-]+$/.test(ref) || ref.startsWith('-')) {
    throw new GateUsageError('usage', `BASE=${JSON.stringify(ref)} is not a git ref`);
  }
  try {
    return git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).trim();
  } catch {
    throw new GateUsageError(
      'usage',
      `BASE=${JSON.stringify(ref)} is not a commit in this repository`,
    );
  }
}
