// Usage: node send.mjs <dsn> <steps-json> [schema]
// Runs a sequence of steps against the real pg-boss and prints one JSON result per step, as a list:
//   {"op": "send", "queue": q, "data": {...}, "options": {...}}  -> {"id": "<uuid>" | null} or {"error": msg}
//   {"op": "fetch", "queue": q}                                   -> {"ids": [...]} (activates jobs)
//   {"op": "fail", "queue": q, "ids": [...] | "fetched"}          -> {"affected": n}
//   {"op": "complete", "queue": q, "ids": [...] | "fetched"}      -> {"affected": n}
//   {"op": "getQueue", "queue": q}                                -> {"queue": {...} | null}
// "fetched" stands for the ids of the latest fetch step.
import { startBoss, readJsonArg } from './boss.mjs'

const dsn = process.argv[2]
const steps = readJsonArg(3, [])
const schema = process.argv[4] ?? 'pgboss'

const boss = await startBoss(dsn, schema)
const results = []
let fetched = []
const idsOf = step => (step.ids === 'fetched' ? fetched : step.ids)
try {
  for (const step of steps) {
    if (step.op === 'send') {
      try {
        results.push({ id: await boss.send(step.queue, step.data ?? {}, step.options ?? {}) })
      } catch (err) {
        results.push({ error: err.message })
      }
    } else if (step.op === 'fetch') {
      const jobs = await boss.fetch(step.queue, { batchSize: step.batchSize ?? 1 })
      fetched = jobs.map(job => job.id)
      results.push({ ids: fetched })
    } else if (step.op === 'fail') {
      const res = await boss.fail(step.queue, idsOf(step))
      results.push({ affected: res.affected })
    } else if (step.op === 'complete') {
      const res = await boss.complete(step.queue, idsOf(step))
      results.push({ affected: res.affected })
    } else if (step.op === 'getQueue') {
      results.push({ queue: await boss.getQueue(step.queue) })
    } else {
      throw new Error(`unknown op ${step.op}`)
    }
  }
  process.stdout.write(JSON.stringify(results) + '\n')
} finally {
  await boss.stop({ graceful: false, close: true })
}
