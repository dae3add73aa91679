#!/usr/bin/env python3
"""Stream an answer from fastify-llm-relay with `requests`, resuming if the connection drops.

    python3 python-requests.py [BASE_URL] [PROMPT | JSON_BODY]

BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it starts
with "{", the whole request body. Set RELAY_API_KEY when the relay has RELAY_API_KEYS. The
answer's text goes to stdout exactly as generated; everything else to stderr. Exit status: 0 for
a complete answer; otherwise 1, with one line saying why (relay unreachable, an error answer, a
failed answer).

Needs only `requests` (Debian: python3-requests).
"""
import json
import os
import re
import sys
import time

import requests

base = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RELAY_URL") or "http://127.0.0.1:3000").rstrip("/")
arg = sys.argv[2] if len(sys.argv) > 2 else "Hello!"
body = json.loads(arg) if arg.startswith("{") else {"messages": [{"role": "user", "content": arg}]}

headers = {"Accept": "text/event-stream"}
if os.environ.get("RELAY_API_KEY"):
    headers["Authorization"] = "Bearer " + os.environ["RELAY_API_KEY"]


printed = False


def fail(why):
    """One line on stderr (after the text's line, if any), exit 1."""
    print(("\n" if printed else "") + "python-requests.py: " + why, file=sys.stderr)
    sys.exit(1)


def cause(err):
    """The OS's words inside requests' long message ("Connection refused"), else the error's type."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))
    return found.group(1) if found else type(err).__name__


def error_answer(response):
    """The relay's {"error":{"code","message"}} as "STATUS code: message" (or the start of another body)."""
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} " + " ".join(response.text[:200].split())


def events(response):
    """Yield (event, id, data) for each server-sent event; `: ping` comments are skipped."""
    global retry_s
    event, event_id, data = None, None, []
    # chunk_size=None: hand over each chunk as it arrives. The default (512) waits for 512 bytes,
    # which is several tokens: a typewriter would stutter. Lines are read as bytes and decoded
    # one by one, because str.splitlines() would also split on U+2028 and friends inside JSON.
    for raw in response.iter_lines(chunk_size=None):
        line = raw.decode("utf-8")
        if line == "":
            if data:  # a blank line ends an event; one with no data is not dispatched
                yield event or "message", event_id, "\n".join(data)
            event, event_id, data = None, None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            event_id = value
        elif field == "retry" and value.isdigit():
            retry_s = int(value) / 1000  # how long the server asks us to wait before a reconnect


stream_id = None
last_event_id = None
failure = None
retry_s = 3.0
for attempt in range(6):
    if attempt > 0:
        time.sleep(retry_s)
    try:
        if stream_id is None:
            # The first request starts the generation; `x-stream-id` names it for a resume.
            response = requests.post(base + "/v1/chat/stream", json=body, headers=headers,
                                     stream=True, timeout=(10, 60))
        else:
            # A resume: the relay sends only the events after Last-Event-ID, from whichever
            # instance nginx picks, so no token is lost or repeated.
            resume_headers = dict(headers)
            if last_event_id is not None:
                resume_headers["Last-Event-ID"] = last_event_id
            response = requests.get(base + "/v1/chat/stream/" + stream_id, headers=resume_headers,
                                    stream=True, timeout=(10, 60))
        with response:
            if response.status_code != 200:
                # Before the first token the relay answers with a real status and a JSON error.
                fail("the relay answered " + error_answer(response))
            stream_id = stream_id or response.headers.get("x-stream-id")
            for event, event_id, data in events(response):
                if event_id is not None:
                    last_event_id = event_id
                if event == "close":
                    reason = json.loads(data).get("reason")
                    if reason != "done":
                        fail(failure or "the answer ended: " + str(reason))
                    print("\n[close: done]", file=sys.stderr)
                    sys.exit(0)
                if event == "error":
                    error = json.loads(data)
                    failure = f"the answer failed: {error.get('code')}: {error.get('message')}"
                    continue  # `close` with reason "error" follows
                if data == "[DONE]":
                    continue
                message = json.loads(data)
                if message.get("type") == "delta":
                    sys.stdout.write(message["content"])
                    sys.stdout.flush()
                    printed = True
        print("\n[connection ended before close: resuming]", file=sys.stderr)
    except requests.RequestException as err:
        if stream_id is None:
            # Never started: nothing to resume, and a retry would start another generation.
            fail(f"cannot reach the relay at {base} ({cause(err)})")
        # Dropped connection, or no byte for 60 s (heartbeats come every HEARTBEAT_MS).
        print(f"\n[{type(err).__name__}: resuming]", file=sys.stderr)

fail(f"lost the stream at {base} and could not resume")
