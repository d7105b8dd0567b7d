/* pw/deliveries.h: how many times this process received each offset of one partition (a
 * reply's deliveryAttempt).  Bounded: the highest `max` offsets are kept. */
#ifndef PW_DELIVERIES_H
#define PW_DELIVERIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct pw_deliveries pw_deliveries;

/* max >= 1 offsets are remembered.  NULL when out of memory. */
pw_deliveries *pw_deliveries_new(size_t max);

/* Counts one more receipt of offset and returns its number: 1 the first time, n the nth.
 * When the set is full the lowest offset is forgotten; an offset lower than every one kept
 * in a full set is answered 1 and not remembered.  O(log n) search, O(n) for an insert out of
 * order (offsets mostly come ascending: an append).  d NULL: 1. */
unsigned pw_deliveries_count(pw_deliveries *d, int64_t offset);

/* Accepts NULL. */
void pw_deliveries_free(pw_deliveries *d);

#endif
