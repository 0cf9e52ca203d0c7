-- get.lua -- wrk script: GET /api/v1/kv/bench-<n>, n uniform over KEYS keys
-- (default 10000), all present after preload.sh: every request is a hit.
--   bench/wrk/preload.sh http://127.0.0.1:8080
--   wrk -t2 -c40 -d10s --latency -s bench/wrk/get.lua http://127.0.0.1:8080
local keys = tonumber(os.getenv("KEYS") or "10000")

function setup(thread)
  thread:set("seed", math.random(1, 2^31 - 1))
end

function init(args)
  math.randomseed(seed or os.time())
end

request = function()
  return wrk.format("GET", "/api/v1/kv/bench-" .. math.random(0, keys - 1))
end

local bad = 0
response = function(status, headers, body)
  if status ~= 200 or #body ~= 100 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("misses or wrong sizes (last thread): %d\n", bad))
end
