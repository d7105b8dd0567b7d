/* deliveries.c: receipts per offset of one partition, a bounded ascending array. */
#include "pw/deliveries.h"

#include <stdlib.h>
#include <string.h>

typedef struct seen_offset {
    int64_t offset;
    unsigned count;
} seen_offset;

struct pw_deliveries {
    seen_offset *seen; /* ascending by offset */
    size_t n, max;
};

pw_deliveries *pw_deliveries_new(size_t max)
{
    pw_deliveries *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->max = max ? max : 1;
    if (!(d->seen = malloc(d->max * sizeof *d->seen))) {
        free(d);
        return NULL;
    }
    return d;
}

unsigned pw_deliveries_count(pw_deliveries *d, int64_t offset)
{
    if (!d) return 1;
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->seen[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->n && d->seen[lo].offset == offset) return ++d->seen[lo].count;
    if (d->n == d->max) { /* the lowest offset goes */
        if (lo == 0) return 1;
        memmove(d->seen, d->seen + 1, (d->n - 1) * sizeof *d->seen);
        d->n--;
        lo--;
    }
    memmove(d->seen + lo + 1, d->seen + lo, (d->n - lo) * sizeof *d->seen);
    d->seen[lo] = (seen_offset){offset, 1};
    d->n++;
    return 1;
}

void pw_deliveries_free(pw_deliveries *d)
{
    if (!d) return;
    free(d->seen);
    free(d);
}
