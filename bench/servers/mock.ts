/**
 * The project's mock upstream (lib/mock) for the bench: port over IPC, and its per-request
 * records cleared every few seconds (the mock keeps every request for tests' assertions, which
 * over a long run at thousands of requests is a growing heap the bench should not measure).
 */
import { startMockUpstream } from '../../lib/mock/index.js'

const mock = await startMockUpstream({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
setInterval(() => mock.clear(), 2000).unref()
process.on('message', (message: { type?: string }) => { if (message.type === 'stop') process.exit(0) })
process.on('disconnect', () => process.exit(0))
process.send?.({ type: 'ready', port: mock.port, url: mock.url })
