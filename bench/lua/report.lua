-- Shared by every bench script (bench/common.py puts it in front of the variant's script).
-- Each wrk thread counts outcomes in its own Lua state; done() adds them up and prints one
-- machine-readable line, "BENCH {json}", that bench/common.py parses.

local threads = {}
local next_thread_id = 0

counts = {}
position = 0

function count(key)
   counts[key] = (counts[key] or 0) + 1
end

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local totals, furthest = {}, 0
   for _, thread in ipairs(threads) do
      for key, value in pairs(thread:get("counts")) do
         totals[key] = (totals[key] or 0) + value
      end
      furthest = math.max(furthest, thread:get("position"))
   end
   local parts = {}
   for key, value in pairs(totals) do
      parts[#parts + 1] = string.format('"%s": %d', key, value)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"furthest_position": %d, "counts": {%s}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout, furthest, table.concat(parts, ", ")))
end
