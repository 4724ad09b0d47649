"""Docker HEALTHCHECK for both roles: the API answers /healthz; a worker serves /metrics only after its model
is loaded (runner.py starts the metrics server after load_engine), so an answer means "loaded and alive"."""

import os
import sys
import urllib.request

try:
    with open(os.environ.get("MOTIONCACHE_ROLE_FILE", "/tmp/motioncache-role")) as f:
        role = f.read().strip()
except OSError:
    role = "api"

if role == "worker":
    url = f"http://127.0.0.1:{os.environ.get('MOTIONCACHE_METRICS_PORT', '9100')}/metrics"
elif role == "api":
    url = f"http://127.0.0.1:{os.environ.get('MOTIONCACHE_API_PORT', '8000')}/healthz"
else:
    sys.exit(0)  # a one-off command (client, shell): nothing to check

try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as e:  # noqa: BLE001 - any failure is "unhealthy"; say why in `docker inspect`
    print(f"{url}: {e}", file=sys.stderr)
    sys.exit(1)
