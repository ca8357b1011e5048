// Usage: node worker.mjs <dsn> <queues-json> <expected> <timeout-ms> [schema]
// Runs boss.work() on each queue and completes every job it gets, recording {id, name, data}.
// Exits after <expected> jobs completed or after <timeout-ms>, whichever comes first, and prints
// {"jobs": [...], "timedOut": bool, "node": process.version} (the Node the worker ran on).
import { startBoss, readJsonArg } from './boss.mjs'

const dsn = process.argv[2]
const queues = readJsonArg(3, [])
const expected = Number(process.argv[4])
const timeoutMs = Number(process.argv[5])
const schema = process.argv[6] ?? 'pgboss'

const boss = await startBoss(dsn, schema)
const seen = []
let finish
const done = new Promise(resolve => { finish = resolve })
const timer = setTimeout(() => finish(true), timeoutMs)

for (const name of queues) {
  await boss.work(name, { pollingIntervalSeconds: 0.5, batchSize: 100 }, async jobs => {
    for (const job of jobs) seen.push({ id: job.id, name: job.name, data: job.data })
    if (seen.length >= expected) setImmediate(() => finish(false))
  })
}

const timedOut = await done
clearTimeout(timer)
// A graceful stop waits for running handlers, so the last batch is marked completed before exit.
await boss.stop({ graceful: true, timeout: 5000, close: true })
process.stdout.write(JSON.stringify({ jobs: seen, timedOut, node: process.version }) + '\n')
