-- put.lua -- wrk script: PUT /api/v1/kv/bench-<n> with a 100-byte value,
-- n uniform over KEYS keys (default 10000, the same space get.lua reads).
--   wrk -t2 -c40 -d10s --latency -s bench/wrk/put.lua http://127.0.0.1:8080
local keys = tonumber(os.getenv("KEYS") or "10000")
local value = string.rep("v", 100)

function setup(thread)
  thread:set("seed", math.random(1, 2^31 - 1))
end

function init(args)
  math.randomseed(seed or os.time())
end

request = function()
  local path = "/api/v1/kv/bench-" .. math.random(0, keys - 1)
  return wrk.format("PUT", path, { ["Content-Length"] = "100" }, value)
end

-- Count non-2xx answers so a run that mostly failed cannot look fast.
local bad = 0
response = function(status, headers, body)
  if status ~= 204 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non-204 responses (last thread): %d\n", bad))
end
