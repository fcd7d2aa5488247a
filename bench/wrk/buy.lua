-- wrk script: POST /marketplace/item/buy for a random user (1..USERS) of a random item
-- (1..ITEMS). USERS and ITEMS come from the environment (bench/suite.sh sets them).
local users = tonumber(os.getenv("USERS") or "1000")
local items = tonumber(os.getenv("ITEMS") or "1")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_TOKEN (bench/suite.sh sets it when the stack has an operator): its bearer token.
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

request = function()
  local body = string.format('{"userId":%d,"itemId":%d}', math.random(1, users),
                             math.random(1, items))
  return wrk.format(nil, "/marketplace/item/buy", nil, body)
end
-- PACE_MS (optional): each connection waits this long before its next request, for a run
-- below saturation.
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
dofile(os.getenv("GF_WRK_REPORT"))
