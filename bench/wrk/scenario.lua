-- One wrk script for every scenario of `june-serverbench`; the driver describes the request
-- in the environment so the same file can be run by hand:
--   WRK_METHOD=POST WRK_BODY='{"user_id":"u"}' wrk -t2 -c32 -d10s -s bench/wrk/scenario.lua \
--     http://127.0.0.1:8000/api/sessions
-- WRK_SIGNED=PREFIX reads pre-signed webhooks from PREFIX0, PREFIX1… (one file per thread,
-- one "authorization<TAB>body" line per event): LiveKit signs every body, so they cannot be
-- made here. WRK_ADDRS=HOST:PORT,HOST:PORT… spreads the threads over several replicas (each
-- thread keeps to one; the URL's host is only the Host header then). The summary is printed
-- as one JSON line for the driver.

local method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
local signed = os.getenv("WRK_SIGNED")

local addr_list = os.getenv("WRK_ADDRS")
local addrs = nil

local next_thread = 0
function setup(thread)
   thread:set("id", next_thread)
   if addr_list then
      if not addrs then
         addrs = {}
         for host, port in addr_list:gmatch("([^,:]+):(%d+)") do
            addrs[#addrs + 1] = wrk.lookup(host, port)[1]
         end
      end
      thread.addr = addrs[next_thread % #addrs + 1]
   end
   next_thread = next_thread + 1
end

function init(args)
   wrk.method = method
   if body then
      wrk.body = body
      wrk.headers["Content-Type"] = "application/json"
   end
   if signed then
      signed_requests = {}
      for line in io.lines(signed .. id) do
         local auth, payload = line:match("^([^\t]*)\t(.*)$")
         signed_requests[#signed_requests + 1] = wrk.format("POST", nil, {
            ["Authorization"] = auth,
            ["Content-Type"] = "application/webhook+json",
         }, payload)
      end
      sent = 0
   end
end

-- Only signed scenarios pay for a Lua call per request; the others reuse wrk's own request.
if signed then
   function request()
      sent = sent % #signed_requests + 1
      return signed_requests[sent]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
