-- wrk script for bench/: POST one fixed body, then print a single "BENCHJSON {...}" line.
-- Environment: BENCH_BODY (file with the body), BENCH_CTYPE (content type), BENCH_AUTH
-- (Authorization value, optional). The body may be binary: Lua strings are 8-bit clean.

local path = os.getenv("BENCH_BODY")
local fh = assert(io.open(path, "rb"), "cannot read BENCH_BODY " .. tostring(path))
local payload = fh:read("*a")
fh:close()

wrk.method = "POST"
wrk.body = payload
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- Build the request bytes once per thread instead of once per request.
local prepared
function init(args)
  prepared = wrk.format()
end

function request()
  return prepared
end

function done(summary, latency, requests)
  local e = summary.errors
  local function ms(us) return us / 1000.0 end
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_s":%.4f,"p50_ms":%.4f,"p90_ms":%.4f,"p99_ms":%.4f,' ..
    '"max_ms":%.4f,"mean_ms":%.4f,"bytes":%d,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), ms(latency.mean), summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout))
end
