// Usage: node benchmarks/bench_pgboss.mjs <dsn> <insert|send> <queue> <jobs.json> [count] [poolMax]
// Times the real pg-boss 12.38.0 (the copy pinned by tests/interop) enqueuing the jobs of <jobs.json>,
// a JSON array of {"data": {...}, "singletonKey": "...", "startAfter": "<ISO>"}, into <queue>:
//   insert: one boss.insert(queue, jobs) call (pg-boss's bulk path, one statement);
//   send:   one boss.send() per job, all issued at once under Promise.allSettled, like an app fanning out,
//           through pg-boss's own pool (default max 10, connectionTimeoutMillis 10000).
// Only the enqueue is timed (not reading the file, not start()/stop()). Prints one JSON line:
//   {"mode", "n", "ms", "ok", "errors", "firstError", "poolMax"}.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { startBoss } from '../tests/interop/boss.mjs'

const [dsn, mode, queue, file, countArg, poolArg] = process.argv.slice(2)
if (!dsn || !['insert', 'send'].includes(mode) || !queue || !file) {
  process.stderr.write('usage: node bench_pgboss.mjs <dsn> <insert|send> <queue> <jobs.json> [count] [poolMax]\n')
  process.exit(2)
}
let jobs = JSON.parse(readFileSync(file, 'utf8'))
if (countArg) jobs = jobs.slice(0, Number(countArg))
const poolMax = poolArg ? Number(poolArg) : 10 // pg-boss's own default pool size

const boss = await startBoss(dsn, 'pgboss', { max: poolMax })
let ok = 0
let errors = 0
let firstError = null
let ms = 0
try {
  if (mode === 'insert') {
    const started = performance.now()
    await boss.insert(queue, jobs)
    ms = performance.now() - started
    ok = jobs.length // insert() returns null without returnId; the harness counts rows afterwards
  } else {
    const started = performance.now()
    const results = await Promise.allSettled(
      jobs.map(j => boss.send(queue, j.data, { singletonKey: j.singletonKey, startAfter: j.startAfter }))
    )
    ms = performance.now() - started
    for (const r of results) {
      if (r.status === 'fulfilled' && r.value) ok++
      else if (r.status === 'rejected') {
        errors++
        firstError ??= String(r.reason?.message ?? r.reason)
      }
    }
  }
} finally {
  await boss.stop({ graceful: false, close: true })
}
process.stdout.write(JSON.stringify({ mode, n: jobs.length, ms, ok, errors, firstError, poolMax }) + '\n')
