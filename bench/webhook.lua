-- wrk script for the ingress benchmark: POSTs a Cognigy chat webhook, a new contact id each time
-- (digits, as CXone contact ids are: the run prefix, the thread, a counter).
--
--   wrk -t2 -c32 -d10s -s bench/webhook.lua http://127.0.0.1:PORT/webhook/cognigy/route \
--       -- <api-key> <run-prefix: digits>
--
-- The body has the shape of tests.integration.stack.chat_body(). Intents rotate over four queues.
-- done() prints one line "BENCH_JSON {...}" (latencies in microseconds) for run_bench to parse.

local threads = {}
local counter = 0
local intents = {"sales_inquiry", "support_ticket", "billing_dispute", "cancel_subscription"}
local template = '{"sessionId":"session-%s","channel":"webchat3","intent":"%s","intentScore":0.9,' ..
                 '"text":"customer words stay out of the task","data":{"contactId":"%s"}}'

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[2] or "9"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = args[1] or "integration-test-key"
end

function request()
  counter = counter + 1
  local contact = string.format("%s%02d%08d", prefix, tid, counter)
  local body = string.format(template, contact, intents[counter % #intents + 1], contact)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
