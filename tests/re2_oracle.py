"""RE2 itself (google-re2, pinned in tests/requirements.txt) as the oracle
for tests/re2_oracle.rs: reads a JSON list of cases
{"pattern": p, "fold": bool, "values": [...]} on stdin and writes, for each,
{"error": null or RE2's message, "matches": [FullMatch of each value],
"size": RE2's program size (RE2::ProgramSize, what Envoy's
re2.max_program_size limits)}.
Default RE2::Options, as Envoy's safe_regex compiles; `fold` matches as
(?i:p), as the l7_policy host field does, once p alone is valid."""
import json
import sys

import re2


def verdict(case):
    try:
        regex = re2.compile(case["pattern"])
        if case["fold"]:
            regex = re2.compile("(?i:" + case["pattern"] + ")")
    except re2.error as e:
        return {"error": str(e), "matches": [], "size": None}
    return {
        "error": None,
        "matches": [regex.fullmatch(v) is not None for v in case["values"]],
        "size": regex.programsize,
    }


json.dump([verdict(c) for c in json.load(sys.stdin)], sys.stdout)
