/* One canonical event of every kind, shared by the golden-bytes test, the
 * golden writer and the fuzz corpus seeder. tests/golden/check.py builds the
 * same events independently in Python. */
#ifndef PV_GOLDEN_EVENTS_H
#define PV_GOLDEN_EVENTS_H

#include "event.h"

/* Fills ev with the canonical event of `kind`. Points at static data. */
void golden_event(enum pv_event_kind kind, struct pv_event *ev);

#endif
