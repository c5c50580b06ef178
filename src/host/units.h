/* units.h - durations and sizes as users write them.
 *
 * Durations: a non-negative number of seconds (fractions allowed), or a string
 * "<number><unit>" with unit ms, s, m or h ("500ms", "1.5s", "5m", "2h").
 * Sizes: a non-negative number of bytes, or "<number><unit>" with unit K, M, G,
 * T (binary: 1K = 1024; "KiB"/"MiB"/"GiB"/"TiB" and a trailing "B" accepted).
 * Anything else (negative, empty, unknown unit, overflow) is an error whose
 * message quotes the input and shows a valid example.
 */
#ifndef PV_UNITS_H
#define PV_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

int pv_parse_duration(const char *s, uint64_t *ret_ns, struct pv_err *err);
int pv_parse_size(const char *s, uint64_t *ret_bytes, struct pv_err *err);
/* Number forms, for Lua numbers: seconds / bytes. */
int pv_duration_from_seconds(double secs, uint64_t *ret_ns, struct pv_err *err);
int pv_size_from_number(double n, uint64_t *ret_bytes, struct pv_err *err);

/* Writes s (len bytes) into buf double-quoted, escaping quotes, backslashes
 * and control bytes and shortening long input (48 bytes), so that an error
 * message stays one readable line whatever the user wrote. Returns buf. */
const char *pv_quote(const char *s, size_t len, char *buf, size_t size);

/* Human forms for messages: "1.5s", "5m", "512MiB". buf of 32 bytes. */
const char *pv_format_duration(uint64_t ns, char buf[32]);
const char *pv_format_size(uint64_t bytes, char buf[32]);

#endif
