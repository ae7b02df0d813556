-- wrk script: POST /abcd with a server-details JSON body, a distinct hostname per request,
-- and one machine-readable summary line at the end (read by benchmarks/load.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local n = 0

request = function()
  n = n + 1
  local body = string.format(
    '{"hostname":"host-%d","ip":"192.0.2.%d","cpus":%d,"memory_gb":%d,"os":"debian-12","tags":["bench","web"]}',
    n, n % 256, 2 + n % 62, 4 * (1 + n % 16))
  return wrk.format(nil, "/abcd", nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOAD_JSON {"requests":%d,"seconds":%.6f,"failed":%d,"socket_errors":%d,"p50_ms":%.4f,"p99_ms":%.4f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
