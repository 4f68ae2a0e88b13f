-- Shared helpers for the Telehub wrk scripts (loaded with dofile from each script).
-- Every script reports through done() as one line "BENCH_JSON {...}" that bench/run.py parses.

local M = {}

local function esc(s)
  s = tostring(s)
  s = s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n'):gsub('\r', '\\r'):gsub('\t', '\\t')
  s = s:gsub('[%z\1-\31]', function(c) return string.format('\\u%04x', c:byte()) end)
  return s
end

function M.json(v)
  local t = type(v)
  if t == 'table' then
    local parts = {}
    if #v > 0 then
      for _, x in ipairs(v) do parts[#parts + 1] = M.json(x) end
      return '[' .. table.concat(parts, ',') .. ']'
    end
    for k, x in pairs(v) do parts[#parts + 1] = '"' .. esc(k) .. '":' .. M.json(x) end
    return '{' .. table.concat(parts, ',') .. '}'
  elseif t == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return 'null' end
    return string.format('%.17g', v)
  elseif t == 'boolean' then
    return v and 'true' or 'false'
  elseif v == nil then
    return 'null'
  end
  return '"' .. esc(v) .. '"'
end

function M.read_lines(path)
  local out = {}
  local f = assert(io.open(path, 'r'), 'cannot open ' .. tostring(path))
  for line in f:lines() do
    if line ~= '' then out[#out + 1] = line end
  end
  f:close()
  assert(#out > 0, 'no lines in ' .. path)
  return out
end

function M.split_tab(line)
  local a, b = line:match('^([^\t]*)\t(.*)$')
  if a then return a, b end
  return '', line
end

function M.header(headers, name)
  return headers[name] or headers[name:lower()] or headers[name:gsub('^%l', string.upper)]
end

-- Per-thread accounting: counts[label .. ' ' .. status] and a few sample bodies of bad answers.
counts = {}
samples = {}
nsamples = 0

function M.count(label, status, ok, body)
  local key = label .. ' ' .. tostring(status)
  counts[key] = (counts[key] or 0) + 1
  if not ok and nsamples < 4 then
    nsamples = nsamples + 1
    samples[nsamples] = key .. ' :: ' .. tostring(body or ''):sub(1, 700)
  end
end

local threads = {}
local next_id = 1

function M.setup(thread)
  thread:set('thread_id', next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function M.done(summary, latency, requests, extra)
  local merged, all_samples = {}, {}
  for _, thread in ipairs(threads) do
    local c = thread:get('counts') or {}
    for k, n in pairs(c) do merged[k] = (merged[k] or 0) + n end
    local s = thread:get('samples') or {}
    for _, x in ipairs(s) do
      if #all_samples < 8 then all_samples[#all_samples + 1] = x end
    end
  end
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors = {
      connect = summary.errors.connect, read = summary.errors.read, write = summary.errors.write,
      status = summary.errors.status, timeout = summary.errors.timeout,
    },
    latency_us = {
      p50 = latency:percentile(50), p90 = latency:percentile(90), p99 = latency:percentile(99),
      mean = latency.mean, max = latency.max, min = latency.min, stdev = latency.stdev,
    },
    counts = merged,
    samples = all_samples,
  }
  if extra then for k, v in pairs(extra) do out[k] = v end end
  io.write('BENCH_JSON ' .. M.json(out) .. '\n')
end

return M
