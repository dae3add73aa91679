/**
 * Child processes of the bench: node scripts started under `taskset` (so every thread, GC and
 * libuv pool included, inherits the CPU pin), with an IPC channel; and what /proc says of them.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
export const canPin = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true'])
    return true
  } catch {
    return false
  }
})()

export interface Child {
  proc: ChildProcess
  pid: number
  name: string
  /** Resolves with the next IPC message of `type`. */
  next<T = Record<string, unknown>>(type: string, timeoutMs?: number): Promise<T>
  send (message: unknown): void
  kill (): Promise<void>
  /** Resolves with the exit code (`null` when a signal ended it) once the process is gone. */
  exited: Promise<number | null>
}

/**
 * Starts `node --import tsx <script>` on `core` (undefined: unpinned). `ipc` always on;
 * stdout/stderr go to the terminal prefixed, unless `quiet`.
 */
export function startNode (name: string, script: string, options: { core?: number, env?: Record<string, string>, args?: string[], nodeArgs?: string[], quiet?: boolean } = {}): Child {
  const nodeArgs = ['--import', 'tsx', ...(options.nodeArgs ?? []), join(repoRoot, script), ...(options.args ?? [])]
  const pinned = options.core !== undefined && canPin
  const command = pinned ? 'taskset' : process.execPath
  const args = pinned ? ['-c', String(options.core), process.execPath, ...nodeArgs] : nodeArgs
  const proc = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', options.quiet === true ? 'ignore' : 'pipe', 'pipe', 'ipc']
  })
  const prefix = (data: Buffer): void => {
    for (const line of data.toString().split('\n')) if (line.trim() !== '') process.stderr.write(`  [${name}] ${line}\n`)
  }
  proc.stdout?.on('data', prefix)
  proc.stderr?.on('data', prefix)
  const waiting = new Map<string, Array<(m: unknown) => void>>()
  proc.on('message', (message: { type?: string }) => {
    const list = waiting.get(message.type ?? '')
    const resolve = list?.shift()
    resolve?.(message)
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  return {
    proc,
    exited,
    pid: proc.pid as number,
    name,
    next<T>(type: string, timeoutMs = 30_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no '${type}' message within ${timeoutMs} ms`)), timeoutMs)
        const list = waiting.get(type) ?? []
        list.push((m) => { clearTimeout(timer); resolve(m as T) })
        waiting.set(type, list)
        proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (code ${code}) while waiting for '${type}'`)) })
      })
    },
    send (message: unknown) {
      if (proc.connected) proc.send(message as never)
    },
    async kill () {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGKILL')
      await exited
    }
  }
}

/** user+system CPU of a whole process (all threads), in µs (10 ms resolution: CLK_TCK). */
export function cpuUs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces: fields count from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLK_TCK
}

/** A field of /proc/<pid>/status given in kB, in bytes (NaN when absent). */
function statusBytes (status: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024
}

/** Resident set size in bytes. */
export function rssBytes (pid: number): number {
  return statusBytes(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS')
}

/** RSS and its parts, bytes, read at once: anonymous memory (heaps, the allocator's) and pages mapped from files (code, libraries). */
export function rssParts (pid: number): { rss: number, anon: number, file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return { rss: statusBytes(status, 'VmRSS'), anon: statusBytes(status, 'RssAnon'), file: statusBytes(status, 'RssFile') }
}

/** Child pids of `pid` (nginx workers), from /proc. */
export function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** Pins an already running process and all its threads. */
export function pin (pid: number, core: number): void {
  if (!canPin) return
  try {
    execFileSync('taskset', ['-a', '-pc', String(core), String(pid)], { stdio: 'ignore' })
  } catch {}
}
