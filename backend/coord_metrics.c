/* The coordinator's metrics: 2PC phases and outcomes by kind, decisions by who inserted them,
 * ResolveTransaction answers, optimistic-lock conflicts of buys, and calls to gxp by method
 * and code. Every series is registered by coord_metrics_init (or on the first use of a gRPC
 * code), so the hot path is one relaxed atomic add: no lock, no allocation. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "coordinator.h"
#include "gf/console_feed.h"
#include "gf/metrics.h"

const char *const coord_kind_names[NKINDS] = {"buy", "add_gxp", "bid", "auction_refund",
                                              "auction_payout"};
const char *const coord_outcome_names[NOUTCOMES] = {"succeeded", "failed", "unknown"};

enum outcome coord_outcome_of(const char *state)
{
    for (int o = 0; o < OUTCOME_UNKNOWN; o++) {
        if (strcmp(state, coord_outcome_names[o]) == 0)
            return (enum outcome)o;
    }
    return OUTCOME_UNKNOWN;
}

/* What the prepare phase of a transaction ended with (after prepare_subtract's retries). */
enum prepare_result {
    PREP_PREPARED,
    PREP_REFUSED,
    PREP_UNAVAILABLE,
    PREP_TIMEOUT,
    PREP_ERROR,
    NPREP
};
static const char *const prepare_names[NPREP] = {"prepared", "refused", "unavailable", "timeout",
                                                 "error"};

static const char *const decider_names[NDECIDERS] = {"buy", "add_gxp", "resolve", "bid", "saga"};
static const char *const resolve_names[NRESOLVE] = {"succeeded", "failed", "unavailable",
                                                    "invalid"};

/* The gxp methods the coordinator calls, for the client-side call metrics. */
static const char *const gxp_paths[] = {"/gxp.Gxp/TransactionPrepare", "/gxp.Gxp/CreateUserBalance",
                                        "/gxp.Gxp/GetUserBalance", "/gxp.Gxp/GetAll",
                                        "/gxp.Gxp/GetTransaction"};
#define NGXP_PATHS (sizeof gxp_paths / sizeof gxp_paths[0])
#define NGRPC_CODES 17 /* OK .. UNAUTHENTICATED */

static struct gf_counter *m_started[NKINDS], *m_prepared[NKINDS][NPREP],
    *m_outcome[NKINDS][NOUTCOMES], *m_decided[NDECIDERS][2], *m_resolve[NRESOLVE],
    *m_prepare_retries;
static struct gf_histogram *m_stock_wait;
static struct gf_histogram *m_gxp_latency[NGXP_PATHS];
static _Atomic(struct gf_counter *) m_gxp_calls[NGXP_PATHS][NGRPC_CODES];

void coord_metrics_init(void)
{
    char labels[128];
    for (int k = 0; k < NKINDS; k++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", coord_kind_names[k]);
        m_started[k] = gf_metrics_counter(
            "backend_2pc_started_total",
            "two-phase transactions begun (id claimed, prepare about to be sent), by kind", labels);
        for (int r = 0; r < NPREP; r++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",result=\"%s\"", coord_kind_names[k],
                     prepare_names[r]);
            m_prepared[k][r] = gf_metrics_counter(
                "backend_2pc_prepares_total",
                "prepare phases ended, by kind and result (refused: gxp said no)", labels);
        }
        for (int o = 0; o < NOUTCOMES; o++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",outcome=\"%s\"", coord_kind_names[k],
                     coord_outcome_names[o]);
            m_outcome[k][o] = gf_metrics_counter(
                "backend_2pc_outcomes_total",
                "two-phase transactions ended, by kind and the decision that stands", labels);
        }
    }
    for (int d = 0; d < NDECIDERS; d++) {
        for (int s = 0; s < 2; s++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",decision=\"%s\"", decider_names[d],
                     s == 0 ? "succeeded" : "failed");
            m_decided[d][s] = gf_metrics_counter(
                "backend_2pc_decisions_total",
                "decisions this process inserted into transaction_outbox, by who and which",
                labels);
        }
    }
    for (int a = 0; a < NRESOLVE; a++) {
        snprintf(labels, sizeof labels, "answer=\"%s\"", resolve_names[a]);
        m_resolve[a] = gf_metrics_counter("backend_resolve_transaction_total",
                                          "ResolveTransaction calls answered (gxp's resolver), by "
                                          "answer",
                                          labels);
    }
    m_prepare_retries = gf_metrics_counter(
        "backend_2pc_prepare_retries_total",
        "SUBTRACT prepares sent again after insufficient funds (a just-added GXP may lag)",
        "kind=\"buy\"");
    m_stock_wait = gf_metrics_histogram(
        "backend_buy_stock_take_seconds",
        "the round trip of a buy's decision and conditional UPDATE of the stock row (sent"
        " together), its wait for the row lock included",
        "");
    for (size_t p = 0; p < NGXP_PATHS; p++) {
        snprintf(labels, sizeof labels, "method=\"%s\"", gxp_paths[p]);
        m_gxp_latency[p] = gf_metrics_histogram("backend_gxp_call_duration_seconds",
                                                "calls to gxp, each attempt, by method", labels);
    }
}

void coord_count_gxp_call(const char *path, grpc_status_code code, int64_t us)
{
    size_t p = 0;
    while (p < NGXP_PATHS && strcmp(gxp_paths[p], path) != 0)
        p++;
    if (p == NGXP_PATHS)
        return;
    int idx = code >= 0 && code < NGRPC_CODES ? (int)code : GRPC_STATUS_UNKNOWN;
    struct gf_counter *c = atomic_load_explicit(&m_gxp_calls[p][idx], memory_order_acquire);
    if (c == NULL) {
        /* Two threads may both register: the registry returns the same series to both. */
        char labels[128];
        snprintf(labels, sizeof labels, "method=\"%s\",code=\"%s\"", gxp_paths[p],
                 gf_grpc_code_str((grpc_status_code)idx));
        c = gf_metrics_counter("backend_gxp_calls_total",
                               "calls to gxp, each attempt, by method and gRPC status code",
                               labels);
        atomic_store_explicit(&m_gxp_calls[p][idx], c, memory_order_release);
    }
    gf_counter_add(c, 1);
    gf_histogram_observe_us(m_gxp_latency[p], us);
}

static enum prepare_result prepare_result_of(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return PREP_PREPARED;
    case GF_EPRECONDITION:
    case GF_ECONFLICT:
    case GF_ENOTFOUND:
        return PREP_REFUSED;
    case GF_EUNAVAILABLE:
        return PREP_UNAVAILABLE;
    case GF_ETIMEOUT:
        return PREP_TIMEOUT;
    default:
        return PREP_ERROR;
    }
}

void coord_count_started(enum tx_kind k)
{
    gf_counter_add(m_started[k], 1);
}

void coord_count_prepared(enum tx_kind k, enum gf_status st)
{
    gf_counter_add(m_prepared[k][prepare_result_of(st)], 1);
}

void coord_count_outcome(enum tx_kind k, enum outcome o)
{
    gf_counter_add(m_outcome[k][o], 1);
}

void coord_count_decided(enum decider who, enum outcome o, const char *cid)
{
    static const char *const deciders[] = {"buy", "add_gxp", "resolver", "bid", "saga"};
    if (o == OUTCOME_UNKNOWN)
        return;
    gf_counter_add(m_decided[who][o == OUTCOME_SUCCEEDED ? 0 : 1], 1);
    gf_console_note_tx(
        cid, "", 0, -1, 0, "decided",
        json_pack("{s:s,s:s}", "outcome", coord_outcome_names[o], "by",
                  (unsigned)who < sizeof deciders / sizeof deciders[0] ? deciders[who] : "?"));
}

void coord_count_resolve(enum resolve_answer a)
{
    gf_counter_add(m_resolve[a], 1);
}

void coord_count_prepare_retry(void)
{
    gf_counter_add(m_prepare_retries, 1);
}

void coord_time_stock_take(int64_t us)
{
    gf_histogram_observe_us(m_stock_wait, us);
}
