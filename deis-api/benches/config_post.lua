-- wrk script: POST /v1/apps/<app>/config/ with a fresh value each time, so every request
-- appends a release and rolls it out. Reads DEIS_TOKEN and DEIS_APP from the environment.
local token = os.getenv("DEIS_TOKEN")
local app = os.getenv("DEIS_APP")
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format('{"values": {"BENCH": "%d-%d"}}', math.random(1, 1000000000), counter)
  return wrk.format("POST", "/v1/apps/" .. app .. "/config/", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "token " .. token,
  }, body)
end
