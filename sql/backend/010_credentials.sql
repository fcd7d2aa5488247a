-- Who may log in (POST /auth/login): a user with a password (role user: the token acts for
-- users.id) or an operator (role admin: no user of the marketplace, so that the seed's ids stay
-- as they were). One name space for both: the name logs in. Passwords are argon2id strings
-- (libsodium's encoding); a user created without one has no row and cannot log in until an
-- admin sets one. failed_logins and locked_until throttle guessing per name.
CREATE TABLE credentials (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (octet_length(name) BETWEEN 1 AND 255),
    role           text NOT NULL CHECK (role IN ('user', 'admin')),
    user_id        bigint UNIQUE REFERENCES users (id),
    password_hash  text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'user') = (user_id IS NOT NULL))
);
