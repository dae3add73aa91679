/**
 * docker-compose.yml's `cluster` profile, checked with Debian's docker-compose (no Docker engine
 * runs here): it validates, its six nodes run Redis in cluster mode at fixed addresses, the init
 * job forms the cluster from all six (a replica per master) only when it is not formed yet, and
 * with compose/redis-cluster.env the relays are configured for that cluster, which the relay's
 * own configuration reader accepts. Without the env file they stay on the single Redis.
 */
import { execFile, execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { readConfig } from '../../lib/config.js'

const execFileP = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
// docker-compose substitutes ${REDIS_URL} & co. from the environment: none of ours.
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' }

interface Service { image?: string, command?: string[], profiles?: string[], environment?: Record<string, string | null>, networks?: Record<string, { ipv4_address?: string } | null>, depends_on?: Record<string, { condition: string }> }

async function composeConfig (...args: string[]): Promise<Record<string, Service>> {
  const { stdout } = await execFileP('docker-compose', ['-f', 'docker-compose.yml', ...args, 'config'], { cwd: root, env })
  const json = execFileSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: stdout, encoding: 'utf8' })
  return (JSON.parse(json) as { services: Record<string, Service> }).services
}

/** A relay service's environment as the relay reads it (null: unset). */
const relayEnv = (service: Service | undefined): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(service?.environment ?? {}).map(([k, v]) => [k, v ?? undefined]))

t.test('the cluster profile validates and makes a 6-node Redis Cluster, formed once', async (t) => {
  const { stdout, stderr } = await execFileP('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'cluster', 'config', '-q'], { cwd: root, env })
  t.equal(stdout + stderr, '', 'docker-compose --profile cluster config -q: valid')
  const services = await composeConfig('--profile', 'cluster')
  const nodes = Object.entries(services).filter(([name]) => /^redis-node-\d$/.test(name))
  t.equal(nodes.length, 6, 'six nodes')
  const addresses = nodes.map(([, node]) => node.networks?.relay?.ipv4_address)
  for (const [name, node] of nodes) {
    t.same(node.profiles, ['cluster'], `${name} only in the profile`)
    t.match(node.command?.join(' '), /--cluster-enabled yes/, `${name} runs in cluster mode`)
  }
  t.equal(new Set(addresses).size, 6, `at fixed, distinct addresses (${addresses.join(', ')})`)
  const init = services['redis-cluster-init']
  const script = init?.command?.join(' ') ?? ''
  for (const address of addresses) t.match(script, `${address as string}:6379`, `the init job forms the cluster with ${address as string}`)
  t.match(script, /--cluster-replicas 1/, 'a replica per master')
  t.match(script, /cluster_state:ok \|\|/, 'only when it is not formed yet')
  t.same(Object.keys(init?.depends_on ?? {}).sort(), nodes.map(([name]) => name).sort(), 'once every node is up')
})

t.test('with compose/redis-cluster.env the relays use the cluster; without it, the single Redis', async (t) => {
  const clustered = await composeConfig('--env-file', 'compose/redis-cluster.env')
  const single = await composeConfig()
  for (const relay of ['relay1', 'relay2']) {
    const config = readConfig(relayEnv(clustered[relay]))
    t.same(config.redis, { cluster: [1, 2, 3].map((n) => ({ host: `redis-node-${n}`, port: 6379 })), password: undefined }, `${relay}: the cluster's masters as seeds`)
    t.same(readConfig(relayEnv(single[relay])).redis, { url: 'redis://redis:6379', password: undefined }, `${relay}: the single Redis by default`)
  }
})
