// Stream an answer from fastify-llm-relay with java.net.http.HttpClient, resuming if the
// connection drops. One file, no build tool, no dependency (Java 17 or later):
//
//   java RelayClient.java [BASE_URL] [PROMPT | JSON_BODY]
//
// BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
// docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it
// starts with "{", the whole request body. Set RELAY_API_KEY when the relay has RELAY_API_KEYS.
// The answer's text goes to stdout exactly as generated (UTF-8); everything else to stderr. Exit
// status: 0 for a complete answer; otherwise 1, with one line saying why (relay unreachable, an
// error answer, a failed answer).

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class RelayClient {
    // System.out's charset depends on the locale; the text is Unicode whatever the locale is.
    static final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    static final PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
    static boolean printed = false;

    public static void main(String[] args) throws InterruptedException {
        String env = System.getenv("RELAY_URL");
        String base = (args.length > 0 ? args[0] : env != null && !env.isEmpty() ? env : "http://127.0.0.1:3000").replaceAll("/+$", "");
        String arg = args.length > 1 ? args[1] : "Hello!";
        String body = arg.startsWith("{") ? arg : "{\"messages\":[{\"role\":\"user\",\"content\":" + Json.quote(arg) + "}]}";
        String key = System.getenv("RELAY_API_KEY");

        // HTTP/1.1: on http:// the client would otherwise offer an h2c upgrade on every request.
        HttpClient client = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();

        String streamId = null;
        String lastEventId = null;
        long retryMs = 3000;
        String failure = null;
        for (int attempt = 0; attempt < 6; attempt++) {
            if (attempt > 0) Thread.sleep(retryMs);
            HttpRequest.Builder request;
            if (streamId == null) {
                // The first request starts the generation; `x-stream-id` names it for a resume.
                request = HttpRequest.newBuilder(URI.create(base + "/v1/chat/stream"))
                    .header("content-type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
            } else {
                // A resume: the relay sends only the events after Last-Event-ID, from any instance.
                request = HttpRequest.newBuilder(URI.create(base + "/v1/chat/stream/" + streamId)).GET();
                if (lastEventId != null) request.header("last-event-id", lastEventId);
            }
            request.header("accept", "text/event-stream");
            if (key != null && !key.isEmpty()) request.header("authorization", "Bearer " + key);

            HttpResponse<InputStream> response;
            try {
                response = client.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                // Never started: nothing to resume, and a retry would start another generation.
                if (streamId == null) fail("cannot reach the relay at " + base + " (" + cause(e) + ")");
                err.println("\n[" + cause(e) + ": resuming]");
                continue;
            }
            if (response.statusCode() != 200) fail("the relay answered " + errorAnswer(response));
            if (streamId == null) streamId = response.headers().firstValue("x-stream-id").orElse(null);

            // Server-sent events, line by line. readLine ends a line at CR, LF or CRLF: exactly
            // the line ends of the SSE format.
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
                String event = null;
                StringBuilder data = null;
                for (String line; (line = reader.readLine()) != null; ) {
                    if (line.isEmpty()) {
                        // A blank line ends an event; one with no data is not dispatched.
                        if (data != null) {
                            String name = event == null ? "message" : event;
                            if (name.equals("close")) {
                                Object reason = Json.object(data.toString()).get("reason");
                                if (!"done".equals(reason)) fail(failure != null ? failure : "the answer ended: " + reason);
                                err.println("\n[close: done]");
                                System.exit(0);
                            } else if (name.equals("error")) {
                                Map<String, Object> error = Json.object(data.toString());
                                failure = "the answer failed: " + error.get("code") + ": " + error.get("message"); // `close` follows
                            } else if (!data.toString().equals("[DONE]")) {
                                Map<String, Object> message = Json.object(data.toString());
                                if ("delta".equals(message.get("type"))) {
                                    out.print((String) message.get("content"));
                                    out.flush();
                                    printed = true;
                                }
                            }
                        }
                        event = null;
                        data = null;
                        continue;
                    }
                    if (line.startsWith(":")) continue; // a `: ping` comment
                    int colon = line.indexOf(':');
                    String field = colon < 0 ? line : line.substring(0, colon);
                    String value = colon < 0 ? "" : line.substring(colon + 1);
                    if (value.startsWith(" ")) value = value.substring(1);
                    switch (field) {
                        case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
                        case "event" -> event = value;
                        case "id" -> lastEventId = value;
                        case "retry" -> { if (value.matches("\\d{1,9}")) retryMs = Long.parseLong(value); } // the wait the server asks for
                        default -> { }
                    }
                }
                err.println("\n[connection ended before close: resuming]");
            } catch (IOException e) {
                err.println("\n[" + cause(e) + ": resuming]");
            }
        }
        fail("lost the stream at " + base + " and could not resume");
    }

    /** One line on stderr (after the text's line, if any), exit 1. */
    static void fail(String why) {
        err.println((printed ? "\n" : "") + "RelayClient: " + why);
        System.exit(1);
    }

    /**
     * Why a request failed, in words: the first message down the causes. HttpClient's connect
     * errors carry none (a refused connection and an unknown host are both a bare ConnectException).
     */
    static String cause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.nio.channels.UnresolvedAddressException) return "unknown host";
            if (t.getMessage() != null && !t.getMessage().isEmpty()) return t.getMessage();
        }
        return e instanceof java.net.ConnectException ? "could not connect" : e.getClass().getSimpleName();
    }

    /** The relay's {"error":{"code","message"}} as "STATUS code: message" (or the start of another body). */
    static String errorAnswer(HttpResponse<InputStream> response) {
        String text;
        try (InputStream in = response.body()) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            text = "";
        }
        try {
            Object error = Json.object(text).get("error");
            if (error instanceof Map<?, ?> e) return response.statusCode() + " " + e.get("code") + ": " + e.get("message");
        } catch (IllegalArgumentException notJson) {
            // an answer from something else than the relay (a proxy's HTML page): its first words
        }
        String start = text.replaceAll("\\s+", " ").trim();
        return response.statusCode() + " " + start.substring(0, Math.min(200, start.length()));
    }

    /** Just enough JSON for the relay's events: objects, arrays, strings, numbers, true, false, null. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) { this.s = s; }

        /** Parses a JSON object; IllegalArgumentException if `text` is not one. */
        static Map<String, Object> object(String text) {
            Json p = new Json(text);
            Object value = p.value();
            p.space();
            if (!(value instanceof Map) || p.i != text.length()) throw new IllegalArgumentException("not a JSON object");
            @SuppressWarnings("unchecked") Map<String, Object> map = (Map<String, Object>) value;
            return map;
        }

        /** `text` as a JSON string literal. */
        static String quote(String text) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : text.toCharArray()) {
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> { if (c < 0x20) b.append(String.format("\\u%04x", (int) c)); else b.append(c); }
                }
            }
            return b.append('"').toString();
        }

        private void space() { while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++; }

        private char next() {
            if (i >= s.length()) throw new IllegalArgumentException("unexpected end of JSON");
            return s.charAt(i++);
        }

        private void expect(char c) { if (next() != c) throw new IllegalArgumentException("expected " + c + " at " + (i - 1)); }

        private Object value() {
            space();
            char c = next();
            switch (c) {
                case '{': {
                    Map<String, Object> map = new LinkedHashMap<>();
                    space();
                    if (s.startsWith("}", i)) { i++; return map; }
                    do {
                        space();
                        expect('"');
                        String key = string();
                        space();
                        expect(':');
                        map.put(key, value());
                        space();
                    } while (next() == ',' || closes(i - 1, '}'));
                    return map;
                }
                case '[': {
                    List<Object> list = new ArrayList<>();
                    space();
                    if (s.startsWith("]", i)) { i++; return list; }
                    do {
                        list.add(value());
                        space();
                    } while (next() == ',' || closes(i - 1, ']'));
                    return list;
                }
                case '"': return string();
                case 't': return literal("rue", Boolean.TRUE);
                case 'f': return literal("alse", Boolean.FALSE);
                case 'n': return literal("ull", null);
                default: {
                    int start = i - 1;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
                    try {
                        return Double.parseDouble(s.substring(start, i));
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("bad JSON value at " + start);
                    }
                }
            }
        }

        /** After a member or an element: `close` ends the container (returns false), anything else is an error. */
        private boolean closes(int at, char close) {
            if (s.charAt(at) != close) throw new IllegalArgumentException("expected , or " + close + " at " + at);
            return false;
        }

        private Object literal(String rest, Object value) {
            if (!s.startsWith(rest, i)) throw new IllegalArgumentException("bad JSON literal at " + (i - 1));
            i += rest.length();
            return value;
        }

        private String string() {
            StringBuilder b = new StringBuilder();
            for (char c = next(); c != '"'; c = next()) {
                if (c != '\\') { b.append(c); continue; }
                char e = next();
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> { b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; } // surrogate pairs come as two
                    default -> b.append(e); // \" \\ \/
                }
            }
            return b.toString();
        }
    }
}
