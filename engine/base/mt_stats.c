/*
 * mt_stats.c — summaries and PERCENTILE_CONT by selection (contract and
 * formula in mt_stats.h).
 *
 * Selection is Hoare's quickselect with a median-of-three pivot and a
 * fall back to heapsort-free insertion for short ranges; after v[k] is in
 * place every value after it is >= v[k], so the second value a percentile
 * interpolates with is the minimum of the rest (one scan), and the next,
 * larger fraction selects only in what is left.
 */
#include "mt_stats.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <stdbool.h>

void mt_summary_init(mt_summary *s)
{
    *s = (mt_summary){.min = INFINITY, .max = -INFINITY};
}

void mt_summary_add(mt_summary *s, double v)
{
    if (s->count == 0) s->first = v;
    s->last = v;
    s->count++;
    s->sum += v;
    if (v < s->min) s->min = v;
    if (v > s->max) s->max = v;
    double d = v - s->mean;
    s->mean += d / (double)s->count;
    s->m2 += d * (v - s->mean);
}

void mt_summary_merge(mt_summary *a, const mt_summary *b)
{
    if (b->count == 0) return;
    if (a->count == 0) {
        *a = *b;
        return;
    }
    double n = (double)(a->count + b->count), d = b->mean - a->mean;
    a->m2 += b->m2 + d * d * (double)a->count * (double)b->count / n;
    a->mean += d * (double)b->count / n;
    a->count += b->count;
    a->sum += b->sum;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
    a->last = b->last;
}

double mt_summary_avg(const mt_summary *s)
{
    return s->count ? s->sum / (double)s->count : NAN;
}

double mt_summary_stddev(const mt_summary *s)
{
    return s->count > 1 ? sqrt(s->m2 / (double)(s->count - 1)) : NAN;
}

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Put the k-th smallest of v[lo..hi] at v[k]; smaller before it, larger after. */
static void select_k(double *v, size_t lo, size_t hi, size_t k)
{
    while (hi > lo + 16) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swap(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swap(&v[hi], &v[mid]);
        double pivot = v[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return; /* v[j+1 .. i-1] all equal the pivot, and k is among them */
    }
    for (size_t i = lo + 1; i <= hi; i++) { /* insertion sort of a short range */
        double x = v[i];
        size_t j = i;
        while (j > lo && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* The two ranks (floor and ceil of the position) each fraction needs. */
static void ranks_of(size_t n, double p, double *pos, size_t *first, size_t *second)
{
    *pos = p * (double)(n - 1);
    *first = (size_t)floor(*pos);
    *second = (size_t)ceil(*pos);
}

/* PostgreSQL's float8_lerp between the order statistics around pos. */
static double lerp(double lo, double hi, double pos, size_t first, size_t second)
{
    return second > first ? lo + (pos - (double)first) * (hi - lo) : lo;
}

/* Out of line and used by mt_describe itself: a rollup recomputed from its order statistics
   runs these very instructions, so its bits are the ones stored. */
double mt_percentile_lerp(double lo, double hi, size_t n, double p)
{
    double pos;
    size_t first, second;
    ranks_of(n, p, &pos, &first, &second);
    return lerp(lo, hi, pos, first, second);
}

/* By selection: each fraction narrows the next when they ascend. */
static void by_quickselect(double *v, size_t n, const double *p, size_t np, double *out,
                           double *ranks)
{
    size_t from = 0; /* values before it are placed and smaller than what is left */
    for (size_t i = 0; i < np; i++) {
        double pos;
        size_t first, second;
        ranks_of(n, p[i], &pos, &first, &second);
        if (first < from) from = 0; /* fractions out of order: select in all of it again */
        select_k(v, from, n - 1, first);
        double lo = v[first], hi = lo;
        if (second > first) {
            hi = v[first + 1];
            for (size_t j = first + 2; j < n; j++)
                if (v[j] < hi) hi = v[j];
        }
        out[i] = mt_percentile_lerp(lo, hi, n, p[i]);
        if (ranks) ranks[2 * i] = lo, ranks[2 * i + 1] = hi;
        from = first;
    }
}

#define BUCKET_MIN_N 128 /* below it quickselect is as fast */
#define BUCKET_RANKS 16  /* two ranks per fraction: at most 8 fractions this way */

/*
 * By buckets: a pass for min and max, a pass counting values per bucket of
 * equal width (a monotone map, so buckets hold consecutive order
 * statistics), then the few buckets that hold the ranks wanted are
 * gathered and selected in. Three cheap passes instead of three
 * selections over most of the values; the answers are the same order
 * statistics, so the same bits. Returns false when the values do not suit
 * (one value, an infinite range): the caller selects instead.
 */
static bool by_buckets(const double *v, size_t n, double min, double max, const double *p,
                       size_t np, double *out, double *ranks)
{
    if (n < BUCKET_MIN_N || 2 * np > BUCKET_RANKS) return false;
    size_t nb = n / 8 < 65536 ? n / 8 : 65536; /* ~8 values a bucket: few to gather */
    double scale = (double)nb / (max - min);
    if (!(max > min) || !isfinite(scale) || !(scale > 0)) return false;
    uint32_t *count = calloc(nb, sizeof *count);
    if (!count) return false;
#define BUCKET(x) ((size_t)(((x)-min) * scale) < nb ? (size_t)(((x)-min) * scale) : nb - 1)
    for (size_t i = 0; i < n; i++) count[BUCKET(v[i])]++;
    /* the bucket of each rank, and the rank's place inside it */
    size_t rank[BUCKET_RANKS], bucket[BUCKET_RANKS], nr = 2 * np;
    double pos[BUCKET_RANKS / 2];
    for (size_t i = 0; i < np; i++) ranks_of(n, p[i], &pos[i], &rank[2 * i], &rank[2 * i + 1]);
    /* one walk over the buckets places every rank (visited in ascending order) */
    size_t below[BUCKET_RANKS], order[BUCKET_RANKS];
    for (size_t r = 0; r < nr; r++) {
        size_t at = r;
        while (at > 0 && rank[order[at - 1]] > rank[r]) order[at] = order[at - 1], at--;
        order[at] = r;
    }
    size_t at = 0, seen = 0;
    for (size_t k = 0; k < nr; k++) {
        size_t r = order[k];
        while (seen + count[at] <= rank[r]) seen += count[at++];
        bucket[r] = at;
        below[r] = seen;
    }
    /* the wanted buckets' values, each bucket a segment of scratch */
    size_t wanted[BUCKET_RANKS], nw = 0, total = 0, start[BUCKET_RANKS];
    for (size_t r = 0; r < nr; r++) {
        size_t w = 0;
        while (w < nw && wanted[w] != bucket[r]) w++;
        if (w == nw) {
            wanted[nw] = bucket[r];
            start[nw++] = total;
            total += count[bucket[r]];
        }
    }
    double *scratch = malloc(total * sizeof *scratch);
    if (!scratch) {
        free(count);
        return false;
    }
    size_t fill[BUCKET_RANKS];
    memcpy(fill, start, sizeof fill);
    for (size_t w = 0; w < nw; w++) count[wanted[w]] |= 0x80000000u; /* mark: gather these */
    for (size_t i = 0; i < n; i++) {
        size_t b = BUCKET(v[i]);
        if (!(count[b] & 0x80000000u)) continue;
        size_t w = 0;
        while (wanted[w] != b) w++;
        scratch[fill[w]++] = v[i];
    }
#undef BUCKET
    double val[BUCKET_RANKS];
    for (size_t r = 0; r < nr; r++) {
        size_t w = 0;
        while (wanted[w] != bucket[r]) w++;
        size_t lo = start[w], hi = fill[w] - 1, k = lo + (rank[r] - below[r]);
        select_k(scratch, lo, hi, k);
        val[r] = scratch[k];
    }
    for (size_t i = 0; i < np; i++) {
        double lo = val[2 * i], hi = rank[2 * i + 1] > rank[2 * i] ? val[2 * i + 1] : lo;
        out[i] = mt_percentile_lerp(lo, hi, n, p[i]);
        if (ranks) ranks[2 * i] = lo, ranks[2 * i + 1] = hi;
    }
    free(scratch);
    free(count);
    return true;
}

int mt_describe(double *v, size_t n, const double *p, size_t np, double *sum, double *min,
                double *max, double *out)
{
    return mt_describe_ranks(v, n, p, np, sum, min, max, out, NULL);
}

int mt_describe_ranks(double *v, size_t n, const double *p, size_t np, double *sum, double *min,
                      double *max, double *out, double *ranks)
{
    if (n == 0) return MT_EINVAL;
    for (size_t i = 0; i < np; i++)
        if (!(p[i] >= 0 && p[i] <= 1)) return MT_EINVAL;
    double s = 0, lo = v[0], hi = v[0];
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    if (sum) *sum = s;
    if (min) *min = lo;
    if (max) *max = hi;
    if (np && !by_buckets(v, n, lo, hi, p, np, out, ranks)) by_quickselect(v, n, p, np, out, ranks);
    return MT_OK;
}

int mt_percentiles_cont(double *v, size_t n, const double *p, size_t np, double *out)
{
    return mt_describe(v, n, p, np, NULL, NULL, NULL, out);
}

int mt_percentile_cont(double *v, size_t n, double p, double *out)
{
    return mt_percentiles_cont(v, n, &p, 1, out);
}
