/* Who may log in, and the tokens they get: POST /auth/login, POST /auth/password, the
 * password a user is created with, and the operator (role admin) a deployment starts with.
 *
 * Passwords are argon2id (lib's gf/auth.h). A hash costs ~20 MiB of memory for ~50 ms, so at
 * most AUTH_HASHING_MAX run at once per process: a burst of logins waits for a slot rather than
 * taking the memory of every HTTP thread at once. A name that guesses wrong
 * cfg->login_max_failures times in a row is locked for 1 s, then 2 s, 4 s ... up to 15 min
 * (429 login_throttled with Retry-After): the count lives in credentials, so every replica
 * sees it. An unknown name, a user without a password and a wrong password answer the same
 * 401 after the same work (gf_auth_password_verify hashes against a dummy), so that the
 * answer does not tell which names exist. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "gf/amqp.h"
#include "gf/auth.h"
#include "gf/log.h"

#define AUTH_HASHING_MAX 4

static pthread_mutex_t hashing_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hashing_cv = PTHREAD_COND_INITIALIZER;
static int hashing;

static void hashing_enter(void)
{
    pthread_mutex_lock(&hashing_mu);
    while (hashing >= AUTH_HASHING_MAX)
        pthread_cond_wait(&hashing_cv, &hashing_mu);
    hashing++;
    pthread_mutex_unlock(&hashing_mu);
}

static void hashing_leave(void)
{
    pthread_mutex_lock(&hashing_mu);
    hashing--;
    pthread_cond_signal(&hashing_cv);
    pthread_mutex_unlock(&hashing_mu);
}

static bool verify(const char *hash_or_null, const char *pw)
{
    hashing_enter();
    bool ok = gf_auth_password_verify(hash_or_null, pw);
    hashing_leave();
    return ok;
}

enum gf_status auth_hash_password(const char *pw, char out[GF_AUTH_HASH_SIZE], struct be_err *err)
{
    const char *why = NULL;
    if (!gf_auth_password_ok(pw, &why)) {
        be_err_set(err, "weak_password", "%s", why != NULL ? why : "the password is not allowed");
        return GF_EINVAL;
    }
    hashing_enter();
    enum gf_status st = gf_auth_password_hash(pw, out);
    hashing_leave();
    if (st != GF_OK)
        be_err_set(err, "out_of_memory", "the password could not be hashed; retry later");
    return st == GF_OK ? GF_OK : GF_ENOMEM;
}

/* ---- POST /auth/login ---------------------------------------------------------------------- */

static enum gf_status count_failure(struct backend_app *app, const char *id, struct be_err *err)
{
    char max[16];
    snprintf(max, sizeof max, "%" PRId64, app->cfg->login_max_failures);
    const char *params[2] = {id, max};
    PGresult *res = NULL;
    enum gf_status st = store_write(app, "be_auth_failure",
                                    "UPDATE credentials SET failed_logins = failed_logins + 1,"
                                    " locked_until = CASE WHEN failed_logins + 1 >= $2::int"
                                    "  THEN now() + make_interval(secs => least(900,"
                                    "   power(2, least(failed_logins + 1 - $2::int, 20))))"
                                    "  ELSE locked_until END"
                                    " WHERE id = $1::bigint",
                                    2, params, &res, err);
    PQclear(res);
    return st;
}

enum gf_status auth_login(struct backend_app *app, const char *name, const char *password,
                          char **token, int64_t *expires_at, int64_t *retry_after_s,
                          struct be_err *err)
{
    *token = NULL;
    *retry_after_s = 0;
    const char *params[1] = {name};
    PGresult *res = NULL;
    enum gf_status st =
        store_exec(app, "be_auth_login",
                   "SELECT id, role, coalesce(user_id, 0), password_hash,"
                   " greatest(0, ceil(extract(epoch FROM locked_until - now())))::bigint"
                   " FROM credentials WHERE name = $1",
                   1, params, &res, err);
    if (st != GF_OK)
        return st;
    bool found = PQntuples(res) == 1;
    char id[24] = "";
    struct gf_auth_claims claims = {0};
    int64_t wait = 0;
    if (found) {
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
        wait = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        enum gf_role role = GF_ROLE_NONE;
        found = gf_role_parse(PQgetvalue(res, 0, 1), &role);
        claims.role = role;
        claims.user_id =
            role == GF_ROLE_USER ? strtoll(PQgetvalue(res, 0, 2), NULL, 10) : strtoll(id, NULL, 10);
        snprintf(claims.name, sizeof claims.name, "%s", name);
    }
    if (wait > 0) {
        PQclear(res);
        *retry_after_s = wait;
        be_err_set(err, "login_throttled",
                   "too many failed logins for this name: retry after %" PRId64 " s", wait);
        return GF_ERATELIMITED;
    }
    /* The same work whether or not the name exists. */
    bool ok = verify(found ? PQgetvalue(res, 0, 3) : NULL, password) && found;
    PQclear(res);
    if (!ok) {
        if (found) {
            struct be_err ignored = {0};
            if (count_failure(app, id, &ignored) != GF_OK)
                GF_WARN("login failure not counted: %s", ignored.message);
        }
        be_err_set(err, "invalid_credentials", "the name or the password is wrong");
        return GF_EUNAUTHENTICATED;
    }
    const char *reset[1] = {id};
    st = store_write(app, "be_auth_reset",
                     "UPDATE credentials SET failed_logins = 0, locked_until = NULL"
                     " WHERE id = $1::bigint AND (failed_logins > 0 OR locked_until IS NOT NULL)",
                     1, reset, &res, err);
    PQclear(res);
    if (st != GF_OK)
        return st;
    st = gf_auth_sign(app->keys, &claims, (int64_t)time(NULL), app->cfg->auth_token_ttl_s, token);
    if (st != GF_OK) {
        be_err_set(err, "internal", "the token could not be signed");
        return GF_EINTERNAL;
    }
    *expires_at = claims.exp;
    GF_INFO("login role=%s sub=%" PRId64, gf_role_name(claims.role), claims.user_id);
    return GF_OK;
}

/* ---- POST /auth/password ------------------------------------------------------------------- */

/* An admin (who) sets a user's password: the user's credentials, made when it had none, and the
 * audit event password_set (never the password) in the same statement. */
static enum gf_status set_user_password(struct backend_app *app, const struct gf_auth_claims *who,
                                        int64_t user_id, const char *hash, const char *cid,
                                        struct be_err *err)
{
    char uid[24], payload[EVENTS_ADMIN_HEX_MAX];
    snprintf(uid, sizeof uid, "%" PRId64, user_id);
    struct events_admin a = {
        .action = EVENTS_ACTION_PASSWORD_SET, .who = who, .user_id = user_id, .target_id = user_id};
    if (events_admin_payload(&a, cid, payload, sizeof payload) != GF_OK) {
        GF_ERROR("audit event not encoded (a number past the proto's) action=%s", a.action);
        return be_db_failed(GF_EINTERNAL, err);
    }
    const char *params[4] = {uid, hash, cid, payload};
    PGresult *res = NULL;
    enum gf_status st =
        store_write(app, "be_auth_set_user",
                    "WITH c AS (INSERT INTO credentials (name, role, user_id, password_hash)"
                    " SELECT name, 'user', id, $2 FROM users WHERE id = $1::bigint"
                    " ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash,"
                    "  failed_logins = 0, locked_until = NULL, updated_at = now()"
                    " RETURNING id),"
                    " e AS (INSERT INTO event_outbox (event_name, correlation_id, payload)"
                    " SELECT '" GF_EVENT_ADMIN_ACTION "', $3::uuid, $4::bytea FROM c)"
                    " SELECT id FROM c",
                    4, params, &res, err);
    if (st == GF_EEXISTS)
        be_err_set(err, "name_taken", "an operator has this user's name: rename one of them");
    else if (st == GF_OK && PQntuples(res) != 1) {
        be_err_set(err, "user_not_found", "no user has this id");
        st = GF_ENOTFOUND;
    }
    PQclear(res);
    if (st == GF_OK) {
        relay_kick(app->relay);
        GF_INFO("password set for a user user=%" PRId64 " by=%" PRId64, user_id, who->user_id);
    }
    return st;
}

enum gf_status auth_change_password(struct backend_app *app, const struct gf_auth_claims *who,
                                    const char *current, int64_t user_id, const char *new_pw,
                                    const char *cid, struct be_err *err)
{
    bool for_other = user_id != 0 && !(who->role == GF_ROLE_USER && user_id == who->user_id);
    if (for_other && who->role != GF_ROLE_ADMIN) {
        be_err_set(err, "forbidden", "a user may change only its own password");
        return GF_EFORBIDDEN;
    }
    if (!for_other && current == NULL) {
        be_err_set(err, "missing_field", "field \"password\" (the current password) is required");
        return GF_EINVAL;
    }
    char hash[GF_AUTH_HASH_SIZE];
    enum gf_status st = auth_hash_password(new_pw, hash, err);
    if (st != GF_OK)
        return st;
    if (for_other)
        return set_user_password(app, who, user_id, hash, cid, err);
    char self[24];
    snprintf(self, sizeof self, "%" PRId64, who->user_id);
    const char *params[1] = {self};
    PGresult *res = NULL;
    if (who->role == GF_ROLE_USER)
        st = store_exec(app, "be_auth_own_user",
                        "SELECT id, password_hash FROM credentials WHERE user_id = $1::bigint", 1,
                        params, &res, err);
    else
        st = store_exec(app, "be_auth_own_admin",
                        "SELECT id, password_hash FROM credentials"
                        " WHERE id = $1::bigint AND role = 'admin'",
                        1, params, &res, err);
    if (st != GF_OK)
        return st;
    bool found = PQntuples(res) == 1;
    bool ok = verify(found ? PQgetvalue(res, 0, 1) : NULL, current) && found;
    char id[24] = "";
    if (found)
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!ok) {
        be_err_set(err, "wrong_password", "the current password is wrong");
        return GF_EFORBIDDEN;
    }
    const char *upd[2] = {id, hash};
    st = store_write(app, "be_auth_change",
                     "UPDATE credentials SET password_hash = $2, failed_logins = 0,"
                     " locked_until = NULL, updated_at = now() WHERE id = $1::bigint",
                     2, upd, &res, err);
    PQclear(res);
    if (st == GF_OK)
        GF_INFO("password changed role=%s sub=%" PRId64, gf_role_name(who->role), who->user_id);
    return st;
}

/* ---- the first operator --------------------------------------------------------------------- */

enum gf_status auth_bootstrap_admin(struct backend_app *app)
{
    const char *name = app->cfg->admin_name;
    if (name == NULL || name[0] == '\0')
        return GF_OK;
    struct be_err err = {0};
    const char *params[2] = {name, NULL};
    PGresult *res = NULL;
    enum gf_status st =
        store_exec(app, "be_auth_admin_find", "SELECT role FROM credentials WHERE name = $1", 1,
                   params, &res, &err);
    if (st != GF_OK) {
        GF_ERROR("admin bootstrap: %s", err.message);
        return st;
    }
    bool exists = PQntuples(res) == 1;
    bool is_admin = exists && strcmp(PQgetvalue(res, 0, 0), "admin") == 0;
    PQclear(res);
    if (exists) {
        if (!is_admin) {
            GF_ERROR("BACKEND_ADMIN_NAME names a user, not an operator: choose another name");
            return GF_ECONFLICT;
        }
        return GF_OK; /* made before: its password is its own now (POST /auth/password) */
    }
    if (app->cfg->admin_password == NULL || app->cfg->admin_password[0] == '\0') {
        GF_ERROR("BACKEND_ADMIN_NAME is set and BACKEND_ADMIN_PASSWORD is not: the operator "
                 "needs a first password");
        return GF_EINVAL;
    }
    char hash[GF_AUTH_HASH_SIZE];
    st = auth_hash_password(app->cfg->admin_password, hash, &err);
    if (st != GF_OK) {
        GF_ERROR("BACKEND_ADMIN_PASSWORD: %s", err.message);
        return st;
    }
    params[1] = hash;
    st = store_write(app, "be_auth_admin_make",
                     "INSERT INTO credentials (name, role, password_hash) VALUES ($1, 'admin', $2)"
                     " ON CONFLICT (name) DO NOTHING",
                     2, params, &res, &err);
    PQclear(res);
    if (st != GF_OK)
        GF_ERROR("admin bootstrap: %s", err.message);
    else
        GF_INFO("operator created (role admin) from BACKEND_ADMIN_NAME");
    return st;
}
