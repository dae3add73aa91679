// The clock demo page's script (a file of its own: the page's Content-Security-Policy runs no inline script).
import { openDemoStream } from './demo.js'

const time = document.getElementById('time')
openDemoStream('/demo/clock').on('time', ({ now }) => {
  time.textContent = new Date(now).toLocaleTimeString()
  time.dataset.iso = now
})
