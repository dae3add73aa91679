// Where the replay test looks for the captured provider streams, and the rule that makes it fail
// in CI without them (test/fixtures/upstream-captures.ts).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ownFixture, sharedCaptures } from '../fixtures/upstream-captures.js'

t.test('missing captures fail CI with a message that says what to do, and are optional elsewhere', async t => {
  const missing = join(tmpdir(), 'no-such-captures-dir')
  const inCi = sharedCaptures({ CI: 'true', UPSTREAM_CAPTURES_DIR: missing })
  t.equal(inCi.present, false)
  t.match(inCi.missingInCi, /^CI=true and the captured provider streams are missing \(.*no-such-captures-dir\): .*set UPSTREAM_CAPTURES_DIR$/)
  t.equal(sharedCaptures({ UPSTREAM_CAPTURES_DIR: missing }).missingInCi, undefined, 'outside CI: own fixtures only')
  t.equal(sharedCaptures({ CI: 'false', UPSTREAM_CAPTURES_DIR: missing }).missingInCi, undefined)
})

t.test('present captures are replayed, in CI or not', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'captures-'))
  t.teardown(() => rmSync(dir, { recursive: true }))
  t.match(sharedCaptures({ CI: 'true', UPSTREAM_CAPTURES_DIR: dir }), { dir, present: true, missingInCi: undefined })
})

t.test('the project\'s own fixtures are in the repository', async t => {
  t.match(ownFixture('openai-chat-text-usage.sse').toString('utf8'), /data: \[DONE\]\n\n$/)
})
