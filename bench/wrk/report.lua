-- Appended to every wrk run: one machine-readable line with the figures the bench prints.
-- rps counts the answers that succeeded (wrk's status errors, 4xx and 5xx, left out): a shed
-- request (503 overloaded) is answered in a fraction of a millisecond and is not throughput.
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format("GFBENCH rps=%.1f p50=%.3f p90=%.3f p99=%.3f max=%.3f errors=%d non2xx=%d\n",
    (summary.requests - summary.errors.status) / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors, summary.errors.status))
end
