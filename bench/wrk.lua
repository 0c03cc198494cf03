-- wrk script of bench/http.sh: requests the paths listed in a file (one a
-- line, given after `--`) round-robin, with the headers given by -H (the
-- Authorization and Range headers), and prints one JSON summary line at the
-- end for the shell to read.
--
--   wrk -t2 -c16 -d10s -H 'Range: bytes=0-4095' -s bench/wrk.lua URL -- PATHS_FILE

local paths = {}
local counter = 0

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   -- Threads start at different paths so they do not move in step.
   counter = math.random(#paths)
end

function request()
   counter = counter + 1
   return wrk.format(nil, paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"status_errors":%d,'
         .. '"latency_mean_us":%.1f,"latency_p50_us":%d,"latency_p99_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect + errors.read + errors.write + errors.timeout, errors.status,
      latency.mean, latency:percentile(50), latency:percentile(99)))
end
