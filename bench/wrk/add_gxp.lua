-- wrk script: POST /user/gxp/add of 1 GXP for a random user (1..USERS).
local users = tonumber(os.getenv("USERS") or "1000")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_TOKEN (bench/suite.sh sets it when the stack has an operator): its bearer token.
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

request = function()
  local body = string.format('{"userId":%d,"amount":1}', math.random(1, users))
  return wrk.format(nil, "/user/gxp/add", nil, body)
end
dofile(os.getenv("GF_WRK_REPORT"))
