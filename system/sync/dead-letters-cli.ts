import { openDatabase } from '../db/client.ts';
import { loadEnv } from '../env.ts';
import { getDeadLetter, listDeadLetters, replayDeadLetter } from './dead-letters.ts';

/**
 * `npm run dead-letters -- list [limit] | show <id> | replay <id>` against DATABASE_URL.
 * After a replay that applied, running app processes pick the change up from the
 * change log on their next poll.
 */
const [command, arg] = process.argv.slice(2);
const usage = 'usage: dead-letters list [limit] | show <id> | replay <id>';
const id = Number(arg);
if (
  !['list', 'show', 'replay'].includes(command ?? '') ||
  (command !== 'list' && !(Number.isInteger(id) && id > 0))
) {
  console.error(`dead-letters: ${usage}`);
  process.exit(2);
}
const env = loadEnv(process.env);
const database = await openDatabase({ url: env.DATABASE_URL, authToken: env.DATABASE_AUTH_TOKEN });
try {
  if (command === 'list') {
    const rows = await listDeadLetters(database, arg ? Number(arg) : 50);
    for (const r of rows) {
      console.log(
        `${r.id}\t${new Date(r.receivedAt).toISOString()}\t${r.svixId}\t${r.eventType ?? '-'}\t${r.replayedAt ? 'replayed' : 'pending'}\t${r.reason}`,
      );
    }
    if (rows.length === 0) console.log('no dead letters');
  } else if (command === 'show') {
    const row = await getDeadLetter(database, id);
    if (!row) {
      console.error(`dead-letters: no dead letter ${id}`);
      process.exitCode = 1;
    } else console.log(JSON.stringify(row, null, 2));
  } else {
    const result = await replayDeadLetter(database, id);
    console.log(result.ok ? `replayed ${id}: ${result.outcome}` : `not replayed: ${result.reason}`);
    if (!result.ok) process.exitCode = 1;
  }
} finally {
  await database.close();
}
