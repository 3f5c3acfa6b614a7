"""An emulated Redis for machines without redis-server: `python -m sandbox.lab.fake_redis <port>`.

A fallback for a learner's machine only (the lesson says so in a banner); CI always uses the real server.
"""

import sys

from fakeredis import TcpFakeServer

if __name__ == "__main__":
    server = TcpFakeServer(("127.0.0.1", int(sys.argv[1])), server_type="redis")
    print(f"emulated redis listening on 127.0.0.1:{sys.argv[1]}", flush=True)
    server.serve_forever()
