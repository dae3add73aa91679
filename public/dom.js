// The one way the page's modules make an element: its text, when given, goes in as textContent
// (never as HTML; model output is rendered by markdown.js only).

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
export function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}
