-- Read by id: GET /fhir/<Type>/<id>, the type chosen uniformly, then an id of that type.
-- Args: one file per type, each line "Type/id".
local C = dofile(os.getenv('BENCH_LUA_DIR') .. '/common.lua')

local lists = {}

setup = C.setup

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
  for _, path in ipairs(args) do lists[#lists + 1] = C.read_lines(path) end
  assert(#lists > 0, 'read.lua needs id files as arguments')
end

local headers = { ['Accept'] = 'application/fhir+json' }

function request()
  local list = lists[math.random(#lists)]
  return wrk.format('GET', '/fhir/' .. list[math.random(#list)], headers)
end

function response(status, _, body)
  C.count('GET read', status, status == 200, body)
end

function done(summary, latency, requests) C.done(summary, latency, requests) end
