// The typing demo page's script (a file of its own: the page's Content-Security-Policy runs no inline script).
import { openDemoStream } from './demo.js'

// ?text= is passed on to the stream; the form reloads the page with it.
const text = new URLSearchParams(location.search).get('text')
document.getElementById('input').value = text ?? ''
const typed = document.getElementById('typed')
const stream = openDemoStream(text ? `/demo/typing?text=${encodeURIComponent(text)}` : '/demo/typing')
// A Text node, never HTML: a character is shown as the character it is.
const node = typed.appendChild(document.createTextNode(''))
stream.on('char', ({ char }) => { node.appendData(char) })
stream.es.addEventListener('close', () => { typed.dataset.done = '' })
