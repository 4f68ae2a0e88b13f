-- The ceiling: GET /healthz (no database). No response() hook, so wrk stays as cheap as possible;
-- non-2xx answers still show up in summary.errors.status and wrk's "Non-2xx" line.
local C = dofile(os.getenv('BENCH_LUA_DIR') .. '/common.lua')

wrk.method = 'GET'
wrk.path = '/healthz'
wrk.headers['Accept'] = 'application/json'

setup = C.setup
function done(summary, latency, requests) C.done(summary, latency, requests) end
