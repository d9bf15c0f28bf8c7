/* utf8.h — the one UTF-8 rule of kmq (layer L0).
 *
 * A sequence is valid UTF-8 by RFC 3629: the shortest form, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. Every place that turns bytes
 * (file names, messages) into text — JSON, CSV, SVG, HTML, folder names —
 * decodes with this function and then applies only its own output rule on
 * top (which code points a format can carry, or a folder name should).
 */
#ifndef KMQ_UTF8_H
#define KMQ_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at p, which has `left` bytes
 * (left >= 1), with its code point in *cp; 0 when the byte at p does not
 * start a valid sequence (then *cp is left alone). A NUL byte stops any
 * multi-byte sequence, so a NUL-terminated string may pass a large `left`. */
size_t kmq_utf8_decode(const unsigned char *p, size_t left, uint32_t *cp);

#endif
