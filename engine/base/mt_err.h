/*
 * mt_err.h — Metron's single error space.
 *
 * Every Metron function that can fail returns an int: MT_OK (0) on success,
 * a negative errno (-ENOMEM, -EIO, ...) for operating-system failures passed
 * through unchanged, or one of the Metron codes below, which live in a
 * reserved negative range (-30900 .. -30999) that no errno reaches.
 *
 * Failures of LMDB, zstd and libpq are mapped to these codes in the one file
 * that calls each library, so callers never see a second error space.
 *
 * Errors that need a location (a parse error's line, column and reason) are
 * reported through a small struct the caller passes in (see mt_lp.h); the
 * return code then says only which class of failure happened.
 */
#ifndef MT_ERR_H
#define MT_ERR_H

/* X(name, value, message). Values are never reused once released. */
#define MT_ERR_MAP(X)                                                                              \
    X(MT_ECORRUPT, -30900, "data is corrupt (checksum or structure mismatch)")                     \
    X(MT_EFORMAT, -30901, "unsupported on-disk format version")                                    \
    X(MT_EPARSE, -30902, "input could not be parsed")                                              \
    X(MT_ELIMIT, -30903, "a configured limit was exceeded")                                        \
    X(MT_EPG, -30904, "PostgreSQL reported an error")                                              \
    X(MT_EINVAL, -30905, "invalid argument")                                                       \
    X(MT_ENOTFOUND, -30906, "not found")                                                           \
    X(MT_ECONFLICT, -30907, "value type conflicts with the existing series")                       \
    X(MT_EFULL, -30908, "storage map is full")                                                     \
    X(MT_ECLOSED, -30909, "object is closed or shutting down")                                     \
    X(MT_ECRYPTO, -30910, "a cryptographic operation failed (OpenSSL)")                            \
    X(MT_ENOINDEX, -30911,                                                                         \
      "hour files without their index: index.mdb is missing, empty or not this directory's "       \
      "(nothing was changed; metron repair --rebuild-index rebuilds it from the hour files)")      \
    X(MT_ETIME, -30912, "timestamp outside the accepted window")                                   \
    X(MT_EOLD, -30913, "timestamp older than the retention keeps")

enum {
    MT_OK = 0,
#define MT__ERR_ENUM(name, value, msg) name = (value),
    MT_ERR_MAP(MT__ERR_ENUM)
#undef MT__ERR_ENUM
};

/*
 * Return a static, human-readable message for any code this header defines,
 * for MT_OK, and for any negative errno (via strerror). Never NULL; the
 * string is valid for the life of the process. Thread-safe.
 */
const char *mt_strerror(int err);

/*
 * Return the symbolic name of a code ("MT_ECORRUPT", "ENOENT", "MT_OK"), or
 * "UNKNOWN" for a value this build does not know. Never NULL; static.
 */
const char *mt_err_name(int err);

/* Return -errno for the calling thread's current errno (never 0: -EIO if errno is 0). */
int mt_err_from_errno(void);

#endif
