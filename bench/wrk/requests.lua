-- wrk script: send the raw HTTP requests of a file, one per line, with "~" standing for CRLF.
-- Each wrk thread takes every n-th line, so no request is sent twice (payments carry their own
-- nonce and Idempotency-Key); with BENCH_CYCLE=1 the lines repeat (for idempotent GETs).
-- done() prints one JSON line the benchmark reads: counts and latency percentiles in microseconds.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  local cycle = os.getenv("BENCH_CYCLE") == "1"
  requests, position, exhausted = {}, 0, false
  local index = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if index % nthreads == id then
      table.insert(requests, (line:gsub("~", "\r\n")))
    end
    index = index + 1
  end
  repeat_all = cycle
end

function request()
  position = position + 1
  if position > #requests then
    if repeat_all then
      position = 1
    else
      exhausted = true
      position = #requests
      wrk.thread:stop()
    end
  end
  return requests[position]
end

function done(summary, latency, requests)
  local ran_out = 0
  for _, thread in ipairs(threads) do
    if thread:get("exhausted") then ran_out = ran_out + 1 end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "threads_ran_out": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, ran_out))
end
