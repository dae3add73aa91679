/**
 * nginx for the bench: the repository's own template (nginx/relay.conf.template, rendered by the
 * e2e fixture's `renderNginx`), in a main config sized for thousands of streams — each proxied
 * stream holds two connections, and the tests' 512 `worker_connections` would refuse the load —
 * with one worker pinned to `core` (the load side's core).
 */
import { spawn } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { renderNginx } from '../../test/fixtures/nginx.js'
import { canPin, childPids } from '../load/procs.js'

const freePort = async (): Promise<number> => await new Promise((resolve, reject) => {
  const server = createServer()
  server.once('error', reject)
  server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
  })
})

export interface BenchNginx {
  port: number
  /** Master and worker pids (their CPU is reported apart from the relay's). */
  pids: () => number[]
  stop: () => Promise<void>
}

export async function startBenchNginx (relayPort: number, core: number | undefined): Promise<BenchNginx> {
  const port = await freePort()
  const { dir, conf } = await renderNginx({ relays: [`127.0.0.1:${relayPort}`], httpPort: port, httpsPort: await freePort() })
  const main = (await readFile(conf, 'utf8'))
    .replace(/worker_connections \d+;/, 'worker_connections 65536;')
    .replace('worker_processes 1;', 'worker_processes 1;\nworker_rlimit_nofile 65536;')
  await writeFile(conf, main)
  const pinned = core !== undefined && canPin
  const args = ['-p', dir, '-c', conf, '-g', 'daemon off;']
  const child = spawn(pinned ? 'taskset' : 'nginx', pinned ? ['-c', String(core), 'nginx', ...args] : args, { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // Ready when it answers.
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`)
      await res.arrayBuffer()
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  // taskset execs nginx: the child's pid is the master's.
  const pids = (): number[] => [child.pid as number, ...childPids(child.pid as number)]
  return {
    port,
    pids,
    stop: async () => {
      const workers = pids().slice(1)
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        for (const pid of workers) try { process.kill(pid, 'SIGKILL') } catch {}
      }, 3000)
      await exited
      clearTimeout(timer)
      await rm(dir, { recursive: true, force: true })
    }
  }
}
