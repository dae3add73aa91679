/**
 * What the demo pages share: an EventSource whose connection is shown on the page, so a drop and
 * its resume can be seen. EventSource reconnects by itself after a drop (after the stream's
 * `retry:`), sending the id of the last event it received as `Last-Event-ID`; the server goes on
 * from there. The page's `<section id="connection">` shows the state (`#status`), the reconnects
 * (`#reconnects`), the id it resumed after (`#resumed-from`) and how long it was away (`#away`).
 *
 *   const stream = openDemoStream('/demo/ticker')
 *   stream.on('tick', (data, id) => …)
 */

/** Sets an element's text and its machine-readable `data-value`. */
function show (id, text, value = text) {
  const el = document.getElementById(id)
  if (el === null) return
  el.textContent = text
  el.dataset.value = String(value)
}

const STATES = {
  connecting: 'Connecting…',
  open: 'Connected',
  resumed: 'Reconnected: resumed',
  reconnecting: 'Connection lost: reconnecting…',
  done: 'Finished',
  closed: 'Closed'
}

function setState (state) {
  const el = document.getElementById('status')
  el.dataset.state = state
  el.textContent = STATES[state]
}

/** Fills the page's `#connection` section: the state, then what the last reconnect did. */
function connectionPanel () {
  const section = document.getElementById('connection')
  const status = document.createElement('p')
  status.id = 'status'
  status.className = 'status'
  status.setAttribute('role', 'status')
  const list = document.createElement('dl')
  list.className = 'connection'
  for (const [id, label] of [['reconnects', 'Reconnects'], ['resumed-from', 'Resumed after'], ['away', 'Away for']]) {
    const dt = document.createElement('dt')
    dt.textContent = label
    const dd = document.createElement('dd')
    dd.id = id
    dd.textContent = id === 'reconnects' ? '0' : '–'
    dd.dataset.value = id === 'reconnects' ? '0' : ''
    list.append(dt, dd)
  }
  section.append(status, list)
}

/** Opens `url` and shows its connection; `on(event, handler)` gets each event's parsed data and id. */
export function openDemoStream (url) {
  const es = new EventSource(url)
  let opens = 0
  let lastId = ''
  let lostAt
  connectionPanel()
  setState('connecting')
  es.addEventListener('open', () => {
    opens++
    if (opens === 1) {
      setState('open')
      return
    }
    setState('resumed')
    show('reconnects', String(opens - 1))
    show('resumed-from', lastId === '' ? 'none (a live stream: it goes on from now)' : `event ${lastId}`, lastId)
    if (lostAt !== undefined) show('away', `${((performance.now() - lostAt) / 1000).toFixed(1)} s`, Math.round(performance.now() - lostAt))
  })
  es.addEventListener('error', () => {
    // CONNECTING: EventSource is already reconnecting; CLOSED: it gave up (or the page closed it).
    if (es.readyState === EventSource.CONNECTING) {
      lostAt ??= performance.now()
      setState('reconnecting')
    } else {
      setState('closed')
    }
  })
  // The server's `close` event ends the stream: without es.close() EventSource would reconnect.
  es.addEventListener('close', () => {
    es.close()
    setState('done')
  })
  return {
    es,
    on (name, handler) {
      es.addEventListener(name, (ev) => {
        lastId = ev.lastEventId
        lostAt = undefined
        handler(JSON.parse(ev.data), ev.lastEventId)
      })
    }
  }
}
