// Resolves each path read from stdin (one a line) the ways Java apps do, for
// tests/path_differential.rs: the resolvers' names as a JSON array, then for
// each path a JSON array of the resolved paths (null: the app refuses it,
// for example with a URISyntaxException). Run as `java Resolve.java`.

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;

public class Resolve {
    static final String[] NAMES = {
        "java: new URI(p).normalize().getPath()",
        "java: new URI(URLDecoder.decode(p, UTF_8)).normalize().getPath()",
    };

    static String attempt(Callable<String> f) {
        try {
            return f.call();
        } catch (Exception e) {
            return null;
        }
    }

    static void quote(StringBuilder out, String s) {
        if (s == null) {
            out.append("null");
            return;
        }
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20 || c == 0x7f || Character.isSurrogate(c) || c > 0x7e) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }

    static void line(StringBuilder out, String... fields) {
        out.append('[');
        for (int i = 0; i < fields.length; i++) {
            if (i > 0) out.append(',');
            quote(out, fields[i]);
        }
        out.append("]\n");
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        line(out, NAMES);
        String p;
        while ((p = in.readLine()) != null) {
            if (p.isEmpty()) continue;
            final String path = p;
            line(
                out,
                attempt(() -> new URI(path).normalize().getPath()),
                attempt(() -> new URI(URLDecoder.decode(path, StandardCharsets.UTF_8)).normalize().getPath()));
        }
        BufferedWriter w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        w.write(out.toString());
        w.flush();
    }
}
