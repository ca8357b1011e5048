// A pg-boss worker for the local docker-compose try: works every queue in WORKER_QUEUES, logs each job
// as one JSON line on stdout and completes it. Not part of the scheduler: it stands in for your app.
//
// Environment:
//   DATABASE_URL    postgresql://user:password@host:5432/db (the scheduler's QUEUE_DATABASE_URL)
//   WORKER_QUEUES   comma-separated name:policy pairs, e.g. "demo-digest:stately" (created if missing,
//                   with that policy, which must match the scheduler's queue declaration)
//   WORK_MS         milliseconds each job "works" (default 200)
//   READY_FILE      written once pg-boss has started (the compose healthcheck looks for it)
import { writeFileSync } from 'node:fs'
import { PgBoss } from 'pg-boss'

const dsn = process.env.DATABASE_URL
if (!dsn) {
  process.stderr.write('worker: set DATABASE_URL\n')
  process.exit(2)
}
const queues = (process.env.WORKER_QUEUES ?? 'demo-digest:stately')
  .split(',')
  .map(s => s.trim())
  .filter(Boolean)
  .map(pair => {
    const [name, policy = 'standard'] = pair.split(':')
    return { name, policy }
  })
const workMs = Number(process.env.WORK_MS ?? 200)
const readyFile = process.env.READY_FILE ?? '/tmp/worker-ready'

const log = fields => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...fields }) + '\n')
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const boss = new PgBoss({ connectionString: dsn, max: 5 })
boss.on('error', err => log({ event: 'pgboss_error', message: err.message }))
await boss.start() // creates or migrates pg-boss's schema on first start

for (const { name, policy } of queues) {
  if (!(await boss.getQueue(name))) {
    await boss.createQueue(name, { policy })
    log({ event: 'queue_created', queue: name, policy })
  }
  await boss.work(name, { pollingIntervalSeconds: 2, batchSize: 10 }, async jobs => {
    for (const job of jobs) {
      log({ event: 'job_started', queue: job.name, id: job.id, data: job.data })
      await sleep(workMs)
      log({ event: 'job_completed', queue: job.name, id: job.id })
    }
  })
}
writeFileSync(readyFile, 'ready\n')
log({ event: 'worker_ready', queues })

const stop = async signal => {
  log({ event: 'worker_stopping', signal })
  await boss.stop({ graceful: true, timeout: 10000, close: true })
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
