#!/usr/bin/env bash
# The inference server's memory under concurrent JSON infer requests: a server process (tinynet on one
# CPU unit, REST, default -MaxRequestBytes, GC heap limited to 4.5 GiB so that it cannot take the machine),
# then CLIENTS requests at once, each a JSON body of about BODY_MB MB; prints each answer's status and
# the server's resident memory before and at its peak (VmHWM from /proc).
# usage: tools/server_memory.sh <module folder, e.g. out/HeteroBatch> [clients=3] [body_mb=98]
set -euo pipefail
module=$(realpath "$1"); clients=${2:-3}; body_mb=${3:-98}
work=$(mktemp -d); pid=; trap 'kill $pid $server 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$work/body.json" "$body_mb" <<'PY'
import sys, random
path, mb = sys.argv[1], int(sys.argv[2])
random.seed(7)
sample = ",".join(f"{random.random():.9f}" for _ in range(3 * 32 * 32))  # 12 characters a value
n = max(1, mb * 1_000_000 // (len(sample) + 1))
with open(path, "w") as f:
    f.write('{"inputs":[{"name":"input","datatype":"FP32","shape":[%d,3,32,32],"data":[' % n)
    f.write(",".join([sample] * n))
    f.write(']}]}')
PY
echo "body: $(stat -c %s "$work/body.json") bytes; $clients clients at once; port $port"
DOTNET_GCHeapHardLimit=0x120000000 dotnet pwsh -NoProfile -c "Import-Module '$module/HeteroBatch.psd1'; Get-ComputeUnit | Select-Object -First 1 | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 16 | Start-InferenceServer -Port $port -Wait" > "$work/server.log" 2>&1 &
server=$!
for i in $(seq 1 240); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.5; done
pid=$(pgrep -f "pwsh.dll -NoProfile -c Import-Module .* -Port $port " | head -1)
rss() { grep "^$1:" /proc/$pid/status | awk '{print $2}'; }
before=$(rss VmRSS)
echo "server pid $pid: VmRSS before ${before} kB"
for c in $(seq 1 "$clients"); do
  curl -s -o "$work/answer$c" -w "client $c: %{http_code}, %{size_download} bytes in %{time_total} s\n" -H 'Content-Type: application/json' --data-binary "@$work/body.json" "http://127.0.0.1:$port/v2/models/tinynet/infer" &
done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
for c in $(seq 1 "$clients"); do head -c 160 "$work/answer$c" | tr -d '\n' | sed "s/^/client $c answer: /"; echo; done
peak=$(rss VmHWM)
echo "server VmHWM ${peak} kB: grew $(( (peak - before) / 1024 )) MiB over its ${before} kB before the requests"
