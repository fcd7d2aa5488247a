/* Fuzz target: the JSON bodies of the backend's POST and PATCH routes (validate_body with each
 * route's own field table, backend/validate.c). Input: one digit choosing the body (the order
 * of enum validate_body_kind: 0 user create, 1 item create, 2 item patch, 3 marketplace item
 * create, 4 buy, 5 user item create, 6 add gxp, 7 login, 8 password), then the body's bytes. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gf/auth.h"
#include "validate.h"

/* A value validate_body accepted is within its field's rules (SPEC §2). */
static void check_value(const struct validate_field *f, const struct validate_value *v)
{
    switch (f->kind) {
    case VALIDATE_ID:
        FUZZ_CHECK(v->num >= 1 && v->num <= VALIDATE_ID_MAX);
        break;
    case VALIDATE_COUNT:
        FUZZ_CHECK(v->num >= 1 && v->num <= VALIDATE_U31_MAX);
        break;
    case VALIDATE_COST:
        FUZZ_CHECK(v->num >= 0 && v->num <= VALIDATE_U31_MAX);
        break;
    case VALIDATE_NAME: {
        FUZZ_CHECK(v->str != NULL);
        size_t len = strlen(v->str);
        FUZZ_CHECK(len >= 1 && len <= VALIDATE_NAME_MAX);
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK((unsigned char)v->str[i] >= 0x20 && v->str[i] != 0x7f);
        FUZZ_CHECK(fuzz_json_text_ok(v->str)); /* it goes back out in JSON answers */
        break;
    }
    case VALIDATE_SECRET: /* a password: any string of 1..1024 bytes, never echoed */
        FUZZ_CHECK(v->str != NULL);
        FUZZ_CHECK(strlen(v->str) >= 1 && strlen(v->str) <= GF_AUTH_PASSWORD_MAX);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct validate_body_def *b =
        &validate_bodies[(unsigned char)(data[0] - '0') % VALIDATE_NBODIES];
    FUZZ_CHECK(b->nfields <= VALIDATE_FIELDS_MAX);
    struct validate_value v[VALIDATE_FIELDS_MAX];
    struct be_err err = {0};
    json_t *root = NULL;
    /* The body is read in place: a buffer of its exact size, so a read past it is caught. */
    enum gf_status st =
        validate_body((const char *)data + 1, size - 1, b->fields, b->nfields, &root, v, &err);
    if (st == GF_OK) {
        FUZZ_CHECK(root != NULL);
        for (size_t i = 0; i < b->nfields; i++) {
            FUZZ_CHECK(v[i].present || !b->fields[i].required);
            if (v[i].present)
                check_value(&b->fields[i], &v[i]);
        }
        json_decref(root);
    } else {
        FUZZ_CHECK(st == GF_EINVAL && root == NULL && fuzz_code_ok(err.code));
        for (size_t i = 0; i < b->nfields; i++)
            FUZZ_CHECK(!v[i].present && v[i].str == NULL);
        FUZZ_CHECK(fuzz_json_text_ok(err.message)); /* the 400's message */
    }
    return 0;
}
