-- wrk script: POST /auction/bid on AUCTIONS open auctions (ids AUCTION_FIRST..), each bid above
-- the last one sent to its auction, so that a bid is refused only when it lost a race.
-- Auctions are dealt to wrk's threads (thread t of T bids on the auctions whose index is t mod
-- T); each thread sends its bids round the auctions it owns, in rounds, and round k bids
-- BID_BASE + k: an auction's bids grow, and between two bids on one auction the thread sends
-- as many bids as it owns auctions, so that a bid rarely overtakes the one before it (when it
-- does, the slower is refused 409 bid_too_low). Bidders are users SELLERS+1..USERS at random
-- (the sellers, users 1..SELLERS, cannot bid on their own auctions). Counts the answers by
-- status: the report's line GFBID n200=.. n409=.. nother=..
local first = tonumber(os.getenv("AUCTION_FIRST") or "1")
local auctions = tonumber(os.getenv("AUCTIONS") or "256")
local users = tonumber(os.getenv("USERS") or "1000")
local sellers = tonumber(os.getenv("SELLERS") or "32")
local base = tonumber(os.getenv("BID_BASE") or "1")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_TOKEN (bench/suite.sh sets it when the stack has an operator): its bearer token.
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Main state: the threads, to read their counts in done().
local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

-- Thread state: tid comes from setup (thread:set); WRK_THREADS is wrk's -t (bench/suite.sh),
-- which a thread's init cannot count (wrk starts each thread before it sets up the next).
local owned = {}
local k = 0
n200, n409, nother = 0, 0, 0
function init(args)
  local t = tid or 0
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  for i = t, auctions - 1, n do
    table.insert(owned, first + i)
  end
  math.randomseed(os.time() + t * 7919)
end

request = function()
  local j = k % #owned
  local round = (k - j) / #owned
  k = k + 1
  local body = string.format('{"auctionId":%d,"userId":%d,"amount":%d}', owned[j + 1],
                             math.random(sellers + 1, users), base + round)
  return wrk.format(nil, "/auction/bid", nil, body)
end

response = function(status, headers, body)
  if status == 200 then
    n200 = n200 + 1
  elseif status == 409 then
    n409 = n409 + 1
  else
    nother = nother + 1
  end
end

dofile(os.getenv("GF_WRK_REPORT"))
local report = done
done = function(summary, latency, requests)
  report(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n200")
    b = b + t:get("n409")
    c = c + t:get("nother")
  end
  io.write(string.format("GFBID n200=%d n409=%d nother=%d\n", a, b, c))
end
