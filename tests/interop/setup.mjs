// Usage: node setup.mjs <dsn> [queues-json] [schema]
// Starts the real pg-boss against <dsn> so it creates (migrates) its schema, then creates each queue
// of queues-json, a list of {"name": ..., "options": {...pg-boss Queue options...}}. Prints {"version": n}.
import { startBoss, readJsonArg } from './boss.mjs'

const dsn = process.argv[2]
const queues = readJsonArg(3, [])
const schema = process.argv[4] ?? 'pgboss'

const boss = await startBoss(dsn, schema)
try {
  for (const { name, options } of queues) {
    await boss.createQueue(name, options ?? {})
  }
  const version = await boss.schemaVersion()
  process.stdout.write(JSON.stringify({ version }) + '\n')
} finally {
  await boss.stop({ graceful: false, close: true })
}
