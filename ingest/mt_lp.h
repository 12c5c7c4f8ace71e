/*
 * mt_lp.h — the Influx line-protocol parser.
 *
 * Parses InfluxDB 1.x/2.x line protocol:
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * into lines handed to a callback. The parser is zero-copy: names and string
 * values point into the caller's buffer unless they contained escapes, in
 * which case they point into the parser's scratch space, already unescaped.
 * Either way every pointer in an mt_lp_line is valid only during the
 * on_line callback that receives it; copy what you keep.
 *
 * Rules (the README repeats them for users):
 *   - Lines end with "\n" or "\r\n"; the last line of a buffer needs no
 *     terminator. Leading and trailing spaces and tabs are ignored. Blank
 *     lines and lines whose first non-blank byte is '#' are skipped.
 *   - Escapes depend on the element. Measurement: "\," "\ " "\\". Tag keys,
 *     tag values, field keys: "\," "\=" "\ " "\\". String field values:
 *     "\"" "\\". A backslash before any other byte is a literal backslash.
 *     A name that ends in a lone backslash at the end of a line is rejected.
 *   - Field values: float ("1", "1.0", "-1.5e-3", ".5"), integer ("12i"),
 *     unsigned ("12u"), string ("\"text\""), boolean (t T true True TRUE
 *     f F false False FALSE). NaN and +-Inf (spelled out or overflowing)
 *     are rejected, as InfluxDB does. Floats are correctly rounded.
 *   - Tags are returned sorted by key (bytewise, after unescaping); a
 *     repeated tag key rejects the line. A repeated field key is kept
 *     (the later value wins downstream, like a repeated point).
 *   - Timestamp: optional signed integer in the parser's precision; a line
 *     without one takes the receive time given to the parse call.
 *   - Names and string values must be valid UTF-8 without NUL bytes (they
 *     end up in JSON and PostgreSQL text).
 *   - Every rejected line is reported with its line number, byte column and
 *     reason; parsing continues with the next line.
 *
 * Threading: a parser is not thread-safe; use one per connection or thread.
 */
#ifndef MT_LP_H
#define MT_LP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_time.h"

/* A byte string that is not NUL-terminated. */
typedef struct mt_lp_str {
    const char *ptr; /* first byte; valid only during the callback */
    size_t len;      /* length in bytes */
} mt_lp_str;

typedef enum mt_lp_type {
    MT_LP_FLOAT = 0, /* v.f */
    MT_LP_INT,       /* v.i, "12i" */
    MT_LP_UINT,      /* v.u, "12u" */
    MT_LP_BOOL,      /* v.b */
    MT_LP_STRING,    /* v.s, unescaped */
} mt_lp_type;

typedef struct mt_lp_tag {
    mt_lp_str key;   /* unescaped, non-empty */
    mt_lp_str value; /* unescaped, non-empty */
} mt_lp_tag;

typedef struct mt_lp_field {
    mt_lp_str key;   /* unescaped, non-empty */
    mt_lp_type type; /* which member of v holds the value */
    union {
        double f;
        int64_t i;
        uint64_t u;
        bool b;
        mt_lp_str s;
    } v;
} mt_lp_field;

/* One parsed line. Every pointer is valid only during on_line. */
typedef struct mt_lp_line {
    uint64_t lineno;           /* 1-based line number within the stream */
    mt_lp_str raw;             /* the line as received, without its terminator */
    mt_lp_str measurement;     /* unescaped, non-empty */
    const mt_lp_tag *tags;     /* ntags entries, sorted by key, keys unique */
    size_t ntags;              /* may be 0 */
    const mt_lp_field *fields; /* nfields entries, in input order */
    size_t nfields;            /* at least 1 */
    int64_t ts;                /* nanoseconds since the epoch */
    bool has_ts;               /* false: ts is the receive time */
} mt_lp_line;

/* Why a line was rejected. X(code, label); the label names the reason in metrics. */
#define MT_LP_ERRCODE_MAP(X)                                                                       \
    X(MT_LP_E_LINE_TOO_LONG, "line_too_long")                                                      \
    X(MT_LP_E_BAD_ENCODING, "bad_encoding")                                                        \
    X(MT_LP_E_MISSING_MEASUREMENT, "missing_measurement")                                          \
    X(MT_LP_E_MISSING_TAG_KEY, "missing_tag_key")                                                  \
    X(MT_LP_E_MISSING_TAG_VALUE, "missing_tag_value")                                              \
    X(MT_LP_E_BAD_TAG, "bad_tag")                                                                  \
    X(MT_LP_E_DUPLICATE_TAG, "duplicate_tag")                                                      \
    X(MT_LP_E_TOO_MANY_TAGS, "too_many_tags")                                                      \
    X(MT_LP_E_MISSING_FIELDS, "missing_fields")                                                    \
    X(MT_LP_E_MISSING_FIELD_KEY, "missing_field_key")                                              \
    X(MT_LP_E_MISSING_FIELD_VALUE, "missing_field_value")                                          \
    X(MT_LP_E_BAD_FIELD_VALUE, "bad_field_value")                                                  \
    X(MT_LP_E_NAN_INF, "nan_inf")                                                                  \
    X(MT_LP_E_OUT_OF_RANGE, "value_out_of_range")                                                  \
    X(MT_LP_E_UNTERMINATED_STRING, "unterminated_string")                                          \
    X(MT_LP_E_TOO_MANY_FIELDS, "too_many_fields")                                                  \
    X(MT_LP_E_NAME_TOO_LONG, "name_too_long")                                                      \
    X(MT_LP_E_TRAILING_BACKSLASH, "trailing_backslash")                                            \
    X(MT_LP_E_BAD_TIMESTAMP, "bad_timestamp")                                                      \
    X(MT_LP_E_TRAILING_DATA, "trailing_data")

typedef enum mt_lp_errcode {
#define MT__LP_ERR_ENUM(code, label) code,
    MT_LP_ERRCODE_MAP(MT__LP_ERR_ENUM)
#undef MT__LP_ERR_ENUM
        MT_LP_E__COUNT
} mt_lp_errcode;

/* A rejected line. Pointers are valid only during on_error. */
typedef struct mt_lp_error {
    mt_lp_errcode code; /* the class of the problem */
    uint64_t lineno;    /* 1-based line number within the stream */
    uint32_t col;       /* 1-based byte column where the problem starts */
    mt_lp_str raw;      /* the line (for an overlong line: its first bytes) */
    char reason[192];   /* e.g. `invalid field value "12.5x"`; NUL-terminated */
} mt_lp_error;

/* The metric label of a code ("bad_field_value"); static; "unknown" if out of range. */
const char *mt_lp_errcode_label(mt_lp_errcode code);

/*
 * Write "line N col C: reason" into buf (capacity cap, always NUL-terminated
 * when cap > 0). Returns the length the full text needs, like snprintf.
 */
int mt_lp_error_format(const mt_lp_error *err, char *buf, size_t cap);

/* Limits; each exceeded limit rejects the line with its own reason. */
typedef struct mt_lp_limits {
    size_t max_line_len; /* bytes per line, terminator excluded (default 65536) */
    size_t max_tags;     /* tags per line (default 256) */
    size_t max_fields;   /* fields per line (default 1024) */
    size_t max_name_len; /* bytes of a measurement, tag key, tag value or field key,
                            after unescaping (default 4096) */
} mt_lp_limits;

typedef struct mt_lp_options {
    mt_lp_limits limits;    /* see above */
    mt_precision precision; /* unit of the timestamps in the input (default ns) */
} mt_lp_options;

/* The defaults documented above. */
mt_lp_options mt_lp_options_default(void);

/*
 * Callbacks. on_line returns 0 to continue; any other value stops parsing
 * and is returned by mt_lp_feed / mt_lp_finish / mt_lp_parse. on_error may
 * be NULL (rejected lines are then only counted).
 */
typedef struct mt_lp_handler {
    int (*on_line)(void *ud, const mt_lp_line *line);
    void (*on_error)(void *ud, const mt_lp_error *err);
    void *ud;
} mt_lp_handler;

/* Cumulative counters of one parser (never reset by mt_lp_finish). */
typedef struct mt_lp_counts {
    uint64_t lines;                       /* lines accepted */
    uint64_t points;                      /* fields of accepted lines (one point per field) */
    uint64_t rejected;                    /* lines rejected */
    uint64_t bytes;                       /* bytes fed */
    uint64_t rejected_by[MT_LP_E__COUNT]; /* rejected lines per reason */
} mt_lp_counts;

typedef struct mt_lp_parser mt_lp_parser;

/*
 * Create a parser. opt may be NULL for the defaults; limits of 0 take the
 * default. Returns MT_OK and sets *out, -ENOMEM, or MT_EINVAL.
 */
int mt_lp_parser_new(const mt_lp_options *opt, mt_lp_parser **out);

/* Free a parser. NULL is a no-op. */
void mt_lp_parser_free(mt_lp_parser *p);

/* Change the input precision for lines parsed from now on. */
void mt_lp_parser_set_precision(mt_lp_parser *p, mt_precision precision);

/*
 * Streaming: parse every complete line of buf[0..len) (plus a line begun by
 * earlier feeds), keeping an unfinished last line for the next call. Only
 * the unfinished tail is copied; an overlong line is rejected as soon as it
 * passes the limit and the rest of it is skipped without being buffered.
 * now_ns is the receive time given to lines without a timestamp.
 * Returns MT_OK, -ENOMEM, or the nonzero value of an on_line callback
 * (after which the rest of buf is not parsed and the stream must be
 * finished or the parser freed).
 */
int mt_lp_feed(mt_lp_parser *p, const char *buf, size_t len, int64_t now_ns,
               const mt_lp_handler *h);

/*
 * End of stream: parse the unfinished last line, if any, as a complete
 * line, then reset the stream state (line numbers restart at 1).
 * Returns as mt_lp_feed.
 */
int mt_lp_finish(mt_lp_parser *p, int64_t now_ns, const mt_lp_handler *h);

/*
 * One complete buffer (an HTTP body, a UDP datagram): feed + finish, line
 * numbers starting at 1. No bytes are copied unless a line has escapes.
 */
int mt_lp_parse(mt_lp_parser *p, const char *buf, size_t len, int64_t now_ns,
                const mt_lp_handler *h);

/* The parser's counters. */
const mt_lp_counts *mt_lp_parser_counts(const mt_lp_parser *p);

#endif
