#!/bin/sh
# Watch the raw SSE stream of one answer with curl.
#
#   sh curl.sh [BASE_URL] [PROMPT | JSON_BODY]
#
# BASE_URL defaults to http://localhost:8080 (nginx in docker-compose.yml). The second argument
# is a prompt, or, when it starts with "{", the whole request body. Set RELAY_API_KEY when the
# relay has RELAY_API_KEYS. Prints the stream as it arrives (each `data:` line is one event;
# concatenate the `content` of the "delta" events for the text).
set -eu

base=${1:-http://localhost:8080}
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
exec curl "$@" "${base%/}/v1/chat/stream"
