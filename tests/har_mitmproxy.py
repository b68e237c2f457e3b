"""Reads a HAR file with mitmproxy's own reader (what `mitmdump -nr x.har`
and `mitmweb` use: mitmproxy.io.FlowReader), independently of the tap tool
that wrote it.

Prints one JSON list, a flow per HAR entry, as mitmproxy sees it: method,
URL, status, request and response headers as [name, value] pairs, bodies as
hex, the start timestamp (seconds since the epoch) and the server address.

Usage: python har_mitmproxy.py file.har
"""

import json
import sys

from mitmproxy import io


def flow_json(flow):
    return {
        "method": flow.request.method,
        "url": flow.request.url,
        "status": flow.response.status_code,
        "request_headers": [[k, v] for k, v in flow.request.headers.items(multi=True)],
        "response_headers": [[k, v] for k, v in flow.response.headers.items(multi=True)],
        "request_body": flow.request.get_content(strict=False).hex(),
        "response_body": flow.response.get_content(strict=False).hex(),
        "start": flow.request.timestamp_start,
        "server": list(flow.server_conn.address) if flow.server_conn.address else None,
    }


def main():
    with open(sys.argv[1], "rb") as f:
        flows = [flow_json(flow) for flow in io.FlowReader(f).stream()]
    json.dump(flows, sys.stdout)


if __name__ == "__main__":
    main()
