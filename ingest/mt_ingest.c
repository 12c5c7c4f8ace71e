/* mt_ingest.c — line protocol into engine batches (contract in mt_ingest.h). */
#include "mt_ingest.h"

static const mt_vtype types[] = {
    [MT_LP_FLOAT] = MT_VT_FLOAT, [MT_LP_INT] = MT_VT_INT,       [MT_LP_UINT] = MT_VT_UINT,
    [MT_LP_BOOL] = MT_VT_BOOL,   [MT_LP_STRING] = MT_VT_STRING,
};

int mt_ingest_line(mt_batch *b, const mt_lp_line *line)
{
    /* The parser's strings and the engine's names share a layout: convert once per line. */
    mt_name tk[256], tv[256];
    size_t nt = line->ntags < 256 ? line->ntags : 256;
    if (line->ntags > 256) return MT_ELIMIT;
    for (size_t i = 0; i < nt; i++) {
        tk[i] = (mt_name){line->tags[i].key.ptr, line->tags[i].key.len};
        tv[i] = (mt_name){line->tags[i].value.ptr, line->tags[i].value.len};
    }
    mt_name m = {line->measurement.ptr, line->measurement.len};
    char key[MT_SERIES_MAX_KEY];
    /* Keys differ only in the field: if the longest fits, all do, and the line goes in whole. */
    size_t longest = 0;
    for (size_t f = 1; f < line->nfields; f++)
        if (line->fields[f].key.len > line->fields[longest].key.len) longest = f;
    mt_name lf = {line->fields[longest].key.ptr, line->fields[longest].key.len};
    if (!mt_series_key(key, sizeof key, m, tk, tv, nt, lf)) return MT_ELIMIT;
    for (size_t f = 0; f < line->nfields; f++) {
        const mt_lp_field *fd = &line->fields[f];
        size_t kl =
            mt_series_key(key, sizeof key, m, tk, tv, nt, (mt_name){fd->key.ptr, fd->key.len});
        if (!kl) return MT_ELIMIT; /* unreachable after the check above */
        mt_val v;
        const char *str = NULL;
        switch (fd->type) {
        case MT_LP_FLOAT: v.f = fd->v.f; break;
        case MT_LP_INT: v.i = fd->v.i; break;
        case MT_LP_UINT: v.u = fd->v.u; break;
        case MT_LP_BOOL: v.u = fd->v.b; break;
        case MT_LP_STRING:
            v.u = fd->v.s.len;
            str = fd->v.s.ptr;
            break;
        }
        int rc = mt_batch_add(b, key, kl, line->ts, types[fd->type], v, str);
        if (rc) return rc;
    }
    return MT_OK;
}
