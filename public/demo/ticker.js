// The ticker demo page's script (a file of its own: the page's Content-Security-Policy runs no inline script).
import { openDemoStream } from './demo.js'

const prices = document.getElementById('prices')
const ticks = document.getElementById('ticks')
const rows = new Map()
openDemoStream('/demo/ticker').on('tick', ({ symbol, price }, id) => {
  let row = rows.get(symbol)
  if (row === undefined) {
    row = document.createElement('tr')
    row.dataset.symbol = symbol
    for (let i = 0; i < 3; i++) row.append(document.createElement('td'))
    row.cells[0].textContent = symbol
    rows.set(symbol, row)
    prices.append(row)
  }
  const before = Number(row.dataset.price ?? price)
  row.dataset.price = String(price)
  row.cells[1].textContent = price.toFixed(2)
  row.cells[2].textContent = price >= before ? `▲ ${(price - before).toFixed(2)}` : `▼ ${(before - price).toFixed(2)}`
  row.cells[2].className = price >= before ? 'up' : 'down'
  const item = document.createElement('li')
  item.dataset.id = id
  item.value = Number(id)
  item.textContent = `#${id} ${symbol} ${price.toFixed(2)}`
  ticks.prepend(item)
  while (ticks.children.length > 200) ticks.lastElementChild.remove()
})
