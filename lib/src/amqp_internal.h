/* What lib/src/amqp.c and lib/src/amqp_consumer.c share: the connection's state. */
#ifndef GF_AMQP_INTERNAL_H
#define GF_AMQP_INTERNAL_H

#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/amqp.h"

struct gf_amqp_conn {
    amqp_connection_state_t state;
    char name[128];
    bool socket_open;
    bool logged_in;
    bool broken;     /* a socket, channel or connection error happened: close and reconnect */
    bool confirming; /* confirm.select done; next_tag is the delivery tag of the next publish */
    uint64_t next_tag;
    bool *returned_ids; /* per message of the batch in flight: a basic.return came for it */
    int returned_cap;
};

/* Checks the reply of the last synchronous call; logs and marks the connection broken. */
enum gf_status gf_amqp_check_reply(struct gf_amqp_conn *c, const char *what);
/* Handles a frame nobody waited for (a close from the broker breaks the connection). */
void gf_amqp_handle_stray(struct gf_amqp_conn *c, const amqp_frame_t *f);

#endif
