// Shared helper: a pg-boss instance that neither supervises nor runs cron, so a script
// does exactly what it is asked and stops quickly.
import { PgBoss } from 'pg-boss'

export async function startBoss (dsn, schema = 'pgboss', extra = {}) {
  const boss = new PgBoss({
    connectionString: dsn,
    schema,
    supervise: false,
    schedule: false,
    max: 4,
    ...extra
  })
  boss.on('error', err => process.stderr.write(`pg-boss error: ${err.message}\n`))
  await boss.start()
  return boss
}

export function readJsonArg (index, fallback) {
  const raw = process.argv[index]
  return raw === undefined ? fallback : JSON.parse(raw)
}
