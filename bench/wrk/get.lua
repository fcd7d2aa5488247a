-- wrk script: plain GETs of the path given on the command line, with the bench's report.
-- BENCH_TOKEN (bench/suite.sh sets it when the stack has an operator): its bearer token.
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
dofile(os.getenv("GF_WRK_REPORT"))
