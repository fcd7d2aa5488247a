/* Private to lib: gRPC credentials built from a process's TLS material (gf/grpc.h). */
#ifndef GF_GRPC_TLS_INTERNAL_H
#define GF_GRPC_TLS_INTERNAL_H

#include <grpc/grpc_security.h>
#include <stdbool.h>

#include "gf/grpc.h"

/* Server credentials requiring and verifying a client certificate against the CA; NULL when
 * the material has no certificate of its own (logged). The caller releases them. */
grpc_server_credentials *gf_grpc_tls_server_creds(const struct gf_grpc_tls *tls);
/* Channel credentials verifying the server against the CA and showing the process's own
 * certificate when it has one. The caller releases them. */
grpc_channel_credentials *gf_grpc_tls_channel_creds(const struct gf_grpc_tls *tls);

#endif
