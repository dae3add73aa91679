#!/usr/bin/env node
// Makes sure the system programs the suite drives for real are present: nginx, redis-server,
// Chromium, curl, openssl, docker-compose (to validate the compose file), Debian's
// python3-requests (the Python example client) and a JDK (the Java example client, run with
// `java RelayClient.java`, which compiles it in memory: javac's compiler is needed too). On Debian as root the missing ones are
// installed with apt-get; anywhere else we say what to install and fail — a missing part
// is never a silently skipped test.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/** program to look for → Debian package that provides it */
const needs = [
  { check: () => has('nginx'), pkg: 'nginx-light', what: 'nginx' },
  { check: () => has('redis-server'), pkg: 'redis-server', what: 'redis-server' },
  { check: () => existsSync('/usr/bin/chromium'), pkg: 'chromium', what: 'Chromium (/usr/bin/chromium)' },
  { check: () => has('curl'), pkg: 'curl', what: 'curl' },
  { check: () => has('openssl'), pkg: 'openssl', what: 'openssl' },
  { check: () => has('docker-compose'), pkg: 'docker-compose', what: 'docker-compose (validates docker-compose.yml)' },
  {
    check: () => spawnSync('/usr/bin/python3', ['-c', 'import requests'], { stdio: 'ignore' }).status === 0,
    pkg: 'python3-requests',
    what: 'python3 with requests (/usr/bin/python3)'
  },
  { check: () => has('java') && has('javac'), pkg: 'default-jdk-headless', what: 'a JDK (java and javac)' }
]

function has (program) {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0 ||
    existsSync(`/usr/sbin/${program}`)
}

const missing = needs.filter((n) => !n.check())
if (missing.length === 0) process.exit(0)

const isDebian = existsSync('/etc/debian_version')
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
const pkgs = missing.map((m) => m.pkg)

if (isDebian && isRoot) {
  console.log(`system-deps: installing ${pkgs.join(' ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env })
  const still = missing.filter((n) => !n.check())
  if (still.length === 0) process.exit(0)
  console.error(`system-deps: still missing after apt-get: ${still.map((m) => m.what).join(', ')}`)
  process.exit(1)
}

console.error('system-deps: the test suite drives these for real and they are missing:')
for (const m of missing) console.error(`  - ${m.what} (Debian package: ${m.pkg})`)
console.error(isDebian
  ? `Run as root: apt-get install ${pkgs.join(' ')}`
  : 'Install them with your system\'s package manager, then run npm test again.')
process.exit(1)
