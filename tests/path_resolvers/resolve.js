// Resolves each path read from stdin (one a line) the ways Node apps do, for
// tests/path_differential.rs: the resolvers' names as a JSON array, then for
// each path a JSON array of the resolved paths (null: the app refuses it).
"use strict";

const NAMES = [
  "node: new URL(p, base).pathname",
  "node: new URL(decodeURIComponent(p), base).pathname",
];

function attempt(f) {
  try {
    return f();
  } catch (e) {
    return null;
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = [JSON.stringify(NAMES)];
  for (const p of input.split("\n")) {
    if (p === "") continue;
    out.push(
      JSON.stringify([
        attempt(() => new URL(p, "http://h").pathname),
        attempt(() => new URL(decodeURIComponent(p), "http://h").pathname),
      ]),
    );
  }
  process.stdout.write(out.join("\n") + "\n");
});
