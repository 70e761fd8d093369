-- wrk script for bench/ingest: posts pre-signed WhatsApp webhooks, each with its own
-- message id. The bench writes the complete HTTP requests to one file, all of the same
-- length, so that wrk does no JSON, HMAC or formatting work while the clock runs.
-- Arguments: <file> <bytes per request> <number of wrk threads>.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local data, size, stride, count, next_index

function init(args)
   local f = assert(io.open(args[1], "rb"))
   data = f:read("*a")
   f:close()
   size, stride = tonumber(args[2]), tonumber(args[3])
   count = math.floor(#data / size)
   next_index = id
end

-- Thread k sends requests k, k + stride, k + 2 stride…; past the end of the stock, ids
-- repeat, and the bench makes more than a run can use.
function request()
   local i = next_index % count
   next_index = next_index + stride
   return data:sub(i * size + 1, (i + 1) * size)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("WRK %d %d %d %d %d %d\n", summary.requests, summary.duration,
      e.status, e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
