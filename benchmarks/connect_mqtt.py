"""``python benchmarks/connect_mqtt.py [messages]``: the MQTT part of the connector benchmarks.

The benchmark lives in :mod:`haeryu.bench.connect_mqtt`, so it also runs from an installed
package (``haeryu bench connect`` runs it with the other connectors).
"""

from __future__ import annotations

import sys

from haeryu.bench.connect_mqtt import run

if __name__ == "__main__":
    sys.exit(run(messages=int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
