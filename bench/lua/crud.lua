-- CRUD mix, like the public FHIR server benchmark. One iteration per connection:
--   1 POST Patient  2 POST Encounter (subject = the Patient)  3 POST Observation (subject, encounter)
--   4 POST MedicationRequest (subject, encounter)  5 GET the Patient  6 PUT the Patient (changed)
--   7 DELETE the Observation
-- Ids come from the Location header of the previous answers. wrk's Lua state is per thread, not per
-- connection, so bench/run.py runs this script with as many threads as connections (-tN -cN): each
-- thread then drives exactly one connection and this state machine is per connection.
-- Every answer is checked (201/200/204); a wrong status is counted under "<step> <status>", a sample body is
-- kept, and the connection starts a fresh iteration.
local C = dofile(os.getenv('BENCH_LUA_DIR') .. '/common.lua')

setup = C.setup

local step, seq = 1, 0
local patient, encounter, observation
local iterations, restarts = 0, 0
local tag

local STEPS = { 'POST Patient', 'POST Encounter', 'POST Observation', 'POST MedicationRequest',
                'GET Patient', 'PUT Patient', 'DELETE Observation' }
local EXPECT = { [1] = { [201] = true }, [2] = { [201] = true }, [3] = { [201] = true }, [4] = { [201] = true },
                 [5] = { [200] = true }, [6] = { [200] = true }, [7] = { [200] = true, [204] = true } }

local json_headers = { ['Content-Type'] = 'application/fhir+json', ['Accept'] = 'application/fhir+json' }
local get_headers = { ['Accept'] = 'application/fhir+json' }

local FAMILIES = { 'Benchmark', 'Loadtest', 'Perfson', 'Wrkman', 'Latency', 'Throughput' }
local GIVENS = { 'Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Ken', 'Margaret' }

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
  tag = string.format('t%d-%d', thread_id or 0, math.random(1, 1000000000))
end

local function now_iso()
  return os.date('!%Y-%m-%dT%H:%M:%SZ')
end

local function patient_body(id, family, given, birth)
  local idpart = id and ('"id":"' .. id .. '",') or ''
  return '{"resourceType":"Patient",' .. idpart ..
    '"identifier":[{"system":"urn:telehub:bench","value":"' .. tag .. '-' .. seq .. '"}],' ..
    '"active":true,"name":[{"use":"official","family":"' .. family .. '","given":["' .. given .. '"]}],' ..
    '"telecom":[{"system":"phone","value":"555-01' .. string.format('%02d', seq % 100) .. '","use":"home"}],' ..
    '"gender":"' .. (seq % 2 == 0 and 'female' or 'male') .. '","birthDate":"' .. birth .. '",' ..
    '"address":[{"line":["1 Bench St"],"city":"Boston","state":"MA","postalCode":"02115","country":"US"}]}'
end

local function encounter_body()
  local t = now_iso()
  return '{"resourceType":"Encounter","status":"finished",' ..
    '"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB","display":"ambulatory"},' ..
    '"type":[{"coding":[{"system":"http://snomed.info/sct","code":"185349003","display":"Encounter for check up"}]}],' ..
    '"subject":{"reference":"Patient/' .. patient .. '"},' ..
    '"period":{"start":"' .. t .. '","end":"' .. t .. '"}}'
end

local function observation_body()
  return '{"resourceType":"Observation","status":"final",' ..
    '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],' ..
    '"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},' ..
    '"subject":{"reference":"Patient/' .. patient .. '"},"encounter":{"reference":"Encounter/' .. encounter .. '"},' ..
    '"effectiveDateTime":"' .. now_iso() .. '",' ..
    '"valueQuantity":{"value":' .. math.random(50, 120) .. ',"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}'
end

local function medreq_body()
  return '{"resourceType":"MedicationRequest","status":"active","intent":"order",' ..
    '"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"314076","display":"lisinopril 10 MG Oral Tablet"}]},' ..
    '"subject":{"reference":"Patient/' .. patient .. '"},"encounter":{"reference":"Encounter/' .. encounter .. '"},' ..
    '"authoredOn":"' .. now_iso() .. '"}'
end

local family, given, birth

function request()
  if step == 1 then
    seq = seq + 1
    family = FAMILIES[math.random(#FAMILIES)]
    given = GIVENS[math.random(#GIVENS)]
    birth = string.format('%04d-%02d-%02d', math.random(1930, 2020), math.random(1, 12), math.random(1, 28))
    return wrk.format('POST', '/fhir/Patient', json_headers, patient_body(nil, family, given, birth))
  elseif step == 2 then
    return wrk.format('POST', '/fhir/Encounter', json_headers, encounter_body())
  elseif step == 3 then
    return wrk.format('POST', '/fhir/Observation', json_headers, observation_body())
  elseif step == 4 then
    return wrk.format('POST', '/fhir/MedicationRequest', json_headers, medreq_body())
  elseif step == 5 then
    return wrk.format('GET', '/fhir/Patient/' .. patient, get_headers)
  elseif step == 6 then
    return wrk.format('PUT', '/fhir/Patient/' .. patient, json_headers,
      patient_body(patient, family, given .. ' Updated', birth))
  else
    return wrk.format('DELETE', '/fhir/Observation/' .. observation, get_headers)
  end
end

-- "<base>/Type/id/_history/n" or "<base>/Type/id" -> id
local function location_id(headers)
  local loc = C.header(headers, 'Location') or C.header(headers, 'Content-Location')
  if not loc then return nil end
  loc = loc:gsub('/_history/.*$', '')
  return loc:match('/([^/]+)$')
end

function response(status, headers, body)
  local ok = EXPECT[step][status] == true
  local id
  if ok and step <= 4 then
    id = location_id(headers)
    if not id then
      ok = false
      body = 'no Location header in the answer; body: ' .. tostring(body)
      status = tostring(status) .. '-no-location'
    end
  end
  C.count(STEPS[step], status, ok, body)
  if not ok then
    restarts = restarts + 1
    step = 1
    return
  end
  if step == 1 then patient = id
  elseif step == 2 then encounter = id
  elseif step == 3 then observation = id
  end
  if step == 7 then
    iterations = iterations + 1
    step = 1
  else
    step = step + 1
  end
end

function done(summary, latency, requests) C.done(summary, latency, requests) end
