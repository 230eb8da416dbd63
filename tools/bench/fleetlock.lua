-- wrk script for tools/bench/fleetlock: each request alternates FleetLock pre-reboot and
-- steady-state for one id of this thread, Zincati-shaped (pretty-printed JSON, no Content-Type,
-- fleet-lock-protocol: true); counts the answers that are not 200 and their kinds. The ids are
-- load-THREAD-N, or PREFIX-THREAD-N with a first script argument (wrk ... -- PREFIX).
local thread_id = 0
local counter = 0
local threads = {}

function setup(thread)
    thread_id = thread_id + 1
    thread:set("tid", thread_id)
    table.insert(threads, thread)
end

function init(args)
    prefix = args[1] or "load"
    refused = 0
    kinds = {}
    -- The URL's path is the base URL's (with --group-secrets, "/SECRET"): the calls go below it.
    base = (wrk.path == "/" or wrk.path == nil) and "" or wrk.path:gsub("/$", "")
end

function request()
    counter = counter + 1
    local n = math.floor((counter + 1) / 2)
    local path = base .. ((counter % 2 == 1) and "/v1/pre-reboot" or "/v1/steady-state")
    local body = '{\n  "client_params": {\n    "id": "' .. prefix .. '-' .. tid .. '-' .. (n % 400) .. '",\n    "group": "default"\n  }\n}'
    return wrk.format("POST", path, {["fleet-lock-protocol"] = "true"}, body)
end

function response(status, headers, body)
    if status ~= 200 then
        refused = refused + 1
        local kind = string.match(body or "", '"kind":"([^"]*)"') or tostring(status)
        kinds[kind] = (kinds[kind] or 0) + 1
    end
end

function done(summary, latency, requests)
    local total_refused = 0
    for _, t in ipairs(threads) do
        total_refused = total_refused + t:get("refused")
    end
    io.write(string.format("requests %d, %.0f/s, p50 %.2f ms, p99 %.2f ms, non-200 %d (%.1f %%), errors %d\n",
        summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, total_refused, 100 * total_refused / math.max(summary.requests, 1),
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
