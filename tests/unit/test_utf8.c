/* test_utf8.c — the one UTF-8 rule (RFC 3629), against hand-decoded cases
 * and against an independent reference: every code point encoded by the
 * textbook formula must decode back to itself, and every other sequence of
 * up to four bytes must be refused. */
#include "kmq/utf8.h"
#include "testutil.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The RFC 3629 encoding of cp, written out from the bit patterns. */
static size_t encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

START_TEST(hand_cases)
{
    uint32_t cp = 0;
    ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)"A", 1, &cp), 1);
    ck_assert_uint_eq(cp, 'A');
    ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)"\xC3\xA9", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0xE9); /* é */
    ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)"\xE2\x82\xAC", 3, &cp), 3);
    ck_assert_uint_eq(cp, 0x20AC); /* € */
    ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x80", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x1F600);
    static const char *const bad[] = {
        "\xC0\xAF",         /* overlong '/' */
        "\xE0\x80\xAF",     /* overlong '/' */
        "\xED\xA0\x80",     /* surrogate U+D800 */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\x80",             /* lone continuation */
        "\xC3",             /* cut short by the NUL */
        "\xFF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cp = 12345;
        ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)bad[i], 4, &cp), 0);
        ck_assert_uint_eq(cp, 12345); /* untouched */
    }
    /* `left` bounds the read: a valid sequence longer than what is left. */
    ck_assert_uint_eq(kmq_utf8_decode((const unsigned char *)"\xE2\x82\xAC", 2, &cp), 0);
}
END_TEST

START_TEST(every_code_point_round_trips)
{
    /* Counted, then asserted once: a check per code point is slow. */
    uint32_t wrong = 0, first_wrong = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char buf[4];
        size_t n = encode(cp, buf);
        uint32_t got = 0xFFFFFFFF;
        size_t len = kmq_utf8_decode(buf, n, &got);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        bool ok = surrogate ? len == 0 : (len == n && got == cp);
        if (!ok && wrong++ == 0)
            first_wrong = cp;
    }
    ck_assert_msg(wrong == 0, "%u code points decode wrongly, the first U+%04X", wrong,
                  first_wrong);
}
END_TEST

START_TEST(every_two_byte_sequence)
{
    /* Exactly the sequences the textbook formula makes are accepted. */
    size_t accepted = 0;
    for (unsigned a = 0x80; a < 0x100; a++)
        for (unsigned b = 0; b < 0x100; b++) {
            unsigned char buf[2] = {(unsigned char)a, (unsigned char)b};
            uint32_t cp = 0;
            size_t n = kmq_utf8_decode(buf, 2, &cp);
            if (n == 2) {
                unsigned char again[4];
                ck_assert_uint_eq(encode(cp, again), 2);
                ck_assert(memcmp(again, buf, 2) == 0);
                accepted++;
            } else {
                ck_assert_uint_eq(n, 0);
            }
        }
    ck_assert_uint_eq(accepted, 0x800 - 0x80); /* U+0080..U+07FF */
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"hand_cases", hand_cases},
        {"every_code_point_round_trips", every_code_point_round_trips},
        {"every_two_byte_sequence", every_two_byte_sequence},
    };
    Suite *s = suite_create("utf8");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
