#!/bin/sh
# Watch the raw SSE stream of one answer with curl.
#
#   sh curl.sh [BASE_URL] [PROMPT | JSON_BODY]
#
# BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
# docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it
# starts with "{", the whole request body. Set RELAY_API_KEY when the relay has RELAY_API_KEYS.
# Prints the stream as it arrives (each `data:` line is one event; concatenate the `content` of
# the "delta" events for the text). When the relay answers an error before streaming, that
# answer is the one line printed (`{"error":{"code","message"}}`, exit 22); when it cannot be
# reached, one line on stderr says so (curl's exit status).
set -eu

base=${1:-${RELAY_URL:-http://127.0.0.1:3000}}
arg=${2:-Hello!}
case $arg in
  '{'*) body=$arg ;;
  *)
    # Escape the prompt for a JSON string: backslashes, then double quotes. (Control characters
    # are not handled: pass a JSON body for those.)
    escaped=$(printf '%s' "$arg" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
    body="{\"messages\":[{\"role\":\"user\",\"content\":\"$escaped\"}]}"
    ;;
esac

# -N: no output buffering, so each event is printed when it arrives (without it curl holds
#     what it reads until its buffer fills, which is the "all at once" symptom all over again).
# --fail-with-body: an error before the first token is a real HTTP status with a JSON body:
#     print it and exit non-zero.
set -- -sS -N --fail-with-body \
  -H 'content-type: application/json' -H 'accept: text/event-stream' \
  --data-binary "$body"
if [ -n "${RELAY_API_KEY:-}" ]; then
  set -- "$@" -H "authorization: Bearer $RELAY_API_KEY"
fi

# curl's own message ("curl: (7) Failed to connect to …") is kept aside, to say it in one line.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
status=0
curl "$@" "${base%/}/v1/chat/stream" 2>"$errors" || status=$?
why=$(sed -e 's/^curl: ([0-9]*) //' "$errors" | head -n 1)
case $status in
  0) ;;
  22) echo ;;  # the relay's JSON error is printed: end its line
  6 | 7 | 28) echo "curl.sh: cannot reach the relay at $base ($why)" >&2 ;;
  *) echo "curl.sh: the stream from $base failed ($why)" >&2 ;;
esac
exit $status
