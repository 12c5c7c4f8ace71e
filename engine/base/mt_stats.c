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

int mt_percentiles_cont(double *v, size_t n, const double *p, size_t np, double *out)
{
    if (n == 0) return MT_EINVAL;
    for (size_t i = 0; i < np; i++)
        if (!(p[i] >= 0 && p[i] <= 1)) return MT_EINVAL;
    size_t from = 0; /* values before it are placed and smaller than what is left */
    for (size_t i = 0; i < np; i++) {
        double pos = p[i] * (double)(n - 1);
        size_t first = (size_t)floor(pos), second = (size_t)ceil(pos);
        if (first < from) from = 0; /* fractions out of order: select in all of it again */
        select_k(v, from, n - 1, first);
        double lo = v[first];
        if (second > first) {
            double hi = v[first + 1];
            for (size_t j = first + 2; j < n; j++)
                if (v[j] < hi) hi = v[j];
            out[i] = lo + (pos - (double)first) * (hi - lo); /* PostgreSQL's float8_lerp */
        } else {
            out[i] = lo;
        }
        from = first;
    }
    return MT_OK;
}

int mt_percentile_cont(double *v, size_t n, double p, double *out)
{
    return mt_percentiles_cont(v, n, &p, 1, out);
}
