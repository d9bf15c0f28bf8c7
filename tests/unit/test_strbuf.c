/* test_strbuf.c — growth, content, formatting and the failure state of the
 * growing text buffer, with snprintf as the reference for formatting and
 * every allocation failed in turn. */
#include "kmq/alloc_hook.h"
#include "kmq/strbuf.h"
#include "testutil.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static void assert_content(const kmq_strbuf *b, const void *want, size_t len)
{
    ck_assert_uint_eq(b->len, len);
    ck_assert(len == 0 || memcmp(b->data, want, len) == 0);
}

static bool is_pow2_times_4k(size_t cap)
{
    return cap >= 4096 && cap % 4096 == 0 && ((cap / 4096) & (cap / 4096 - 1)) == 0;
}

/* A zeroed buffer is empty; appending nothing allocates nothing; clear is
 * safe on an empty buffer and twice. */
START_TEST(zeroed_is_empty)
{
    kmq_strbuf b = {0};
    kmq_alloc_fail_after(-1);
    kmq_strbuf_put(&b, NULL, 0);
    kmq_strbuf_str(&b, "");
    ck_assert_int_eq(kmq_alloc_count(), 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert(!b.failed);
    kmq_strbuf_clear(&b);
    kmq_strbuf_clear(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

/* The first append allocates 4 KiB; the capacity doubles only when an
 * append would leave no spare byte, so 1 MiB appended a byte at a time
 * costs one allocation per doubling. */
START_TEST(growth_doubles_from_4k)
{
    kmq_strbuf b = {0};
    kmq_alloc_fail_after(-1);
    kmq_strbuf_put(&b, "x", 1);
    ck_assert_uint_eq(b.cap, 4096);
    ck_assert_int_eq(kmq_alloc_count(), 1);

    const size_t total = (size_t)1 << 20;
    size_t cap = b.cap;
    long grows = 0;
    for (size_t i = 1; i < total; i++) {
        char c = (char)('a' + i % 26);
        kmq_strbuf_put(&b, &c, 1);
        if (b.cap != cap) {
            ck_assert_uint_eq(b.cap, 2 * cap); /* doubled ... */
            ck_assert_uint_eq(b.len, cap);     /* ... when the old one was full */
            cap = b.cap;
            grows++;
        }
        if (b.cap <= b.len) /* (not ck_assert: Check logs every call) */
            ck_abort_msg("cap %zu <= len %zu", b.cap, b.len);
    }
    ck_assert(!b.failed);
    ck_assert_uint_eq(b.len, total);
    ck_assert_uint_eq(b.cap, 2 * total); /* 1 MiB needs a spare byte */
    ck_assert_int_eq(grows, 9);          /* 8 KiB .. 2 MiB */
    ck_assert_int_eq(kmq_alloc_count(), 1 + grows);
    ck_assert(b.data[0] == 'x' && b.data[1] == 'b' &&
              b.data[total - 1] == (char)('a' + (total - 1) % 26));
    kmq_strbuf_clear(&b);

    /* One large append goes straight to the capacity that holds it. */
    char *big = malloc(100000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'q', 100000);
    kmq_alloc_fail_after(-1);
    kmq_strbuf_put(&b, big, 100000);
    ck_assert_int_eq(kmq_alloc_count(), 1);
    ck_assert_uint_eq(b.cap, 131072);
    assert_content(&b, big, 100000);
    /* Exactly filling to cap - 1 does not grow; one more byte does. */
    kmq_strbuf_put(&b, big, b.cap - b.len - 1);
    ck_assert_uint_eq(b.cap, 131072);
    kmq_strbuf_put(&b, "!", 1);
    ck_assert_uint_eq(b.cap, 262144);
    ck_assert(is_pow2_times_4k(b.cap));
    ck_assert_int_eq(kmq_alloc_count(), 2);
    kmq_strbuf_clear(&b);
    free(big);
}
END_TEST

/* put, str and fmt append exactly their bytes, NUL bytes included (the
 * buffer holds bytes, not a C string). */
START_TEST(appends_keep_every_byte)
{
    kmq_strbuf b = {0};
    static const char raw[] = {'a', '\0', 'b', '\n', '\xff', '\0'};
    kmq_strbuf_put(&b, raw, sizeof raw);
    kmq_strbuf_str(&b, "tail");
    kmq_strbuf_put(&b, "ignored", 0);
    kmq_strbuf_fmt(&b, "%c", 'z');
    const char want[] = {'a', '\0', 'b', '\n', '\xff', '\0', 't', 'a', 'i', 'l', 'z'};
    ck_assert(!b.failed);
    assert_content(&b, want, sizeof want);
    kmq_strbuf_clear(&b);
}
END_TEST

static void vfmt_wrapper(kmq_strbuf *b, const char *fmt, ...) KMQ_PRINTF(2, 3);
static void vfmt_wrapper(kmq_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kmq_strbuf_vfmt(b, fmt, ap);
    va_end(ap);
}

/* fmt and vfmt append what snprintf formats, also when the text is longer
 * than the spare room (it is formatted twice: once to measure). */
START_TEST(formatting_matches_snprintf)
{
    kmq_strbuf b = {0};
    char *want = malloc(200000);
    char *longs = malloc(9001);
    ck_assert(want && longs);
    memset(longs, 'L', 9000);
    longs[9000] = '\0';
    size_t w = 0;
#define BOTH(...)                                                                                  \
    do {                                                                                           \
        kmq_strbuf_fmt(&b, __VA_ARGS__);                                                           \
        w += (size_t)snprintf(want + w, 200000 - w, __VA_ARGS__);                                  \
    } while (0)
    BOTH("%d|%d|%u|", -42, 0, 4000000000u);
    BOTH("%zu|%llu|%lld|", (size_t)SIZE_MAX, (unsigned long long)UINT64_MAX, (long long)INT64_MIN);
    BOTH("%x|%08X|%o|", 0xbeefu, 0xabcu, 8u);
    BOTH("%s|%-6s|%6s|%.3s|", "kmq", "ab", "cd", "truncate");
    BOTH("%5d|%-5d|%+d|%%|%c", 7, 7, 7, 'c');
    BOTH("%s", longs);         /* 9000 bytes: grows while formatting */
    BOTH("[%*d]", 20000, 123); /* a width beyond the capacity */
    BOTH("%s/%s:%d", "dir", "name", 12);
#undef BOTH
    vfmt_wrapper(&b, "<%s %d>", "v", 9);
    w += (size_t)snprintf(want + w, 200000 - w, "<%s %d>", "v", 9);
    ck_assert(!b.failed);
    assert_content(&b, want, w);
    ck_assert(b.cap > b.len && is_pow2_times_4k(b.cap));
    kmq_strbuf_clear(&b);
    free(want);
    free(longs);
}
END_TEST

/* A conversion the C library refuses (a wide character outside the C
 * locale's ASCII) fails the buffer and leaves the earlier text; when the
 * library accepts it instead, the text is what snprintf gives. */
START_TEST(format_error_fails)
{
    kmq_strbuf b = {0};
    static const wchar_t wide[] = {0xe9, 0};
    kmq_strbuf_str(&b, "before");
    size_t cap = b.cap;
    char *data = b.data;
    kmq_strbuf_fmt(&b, "%ls", wide);
    char ref[16];
    int n = snprintf(ref, sizeof ref, "%ls", wide);
    if (n < 0) {
        ck_assert(b.failed);
        assert_content(&b, "before", 6);
        ck_assert_uint_eq(b.cap, cap);
        ck_assert_ptr_eq(b.data, data);
        kmq_strbuf_str(&b, "after");
        assert_content(&b, "before", 6);
    } else {
        ck_assert(!b.failed);
        ck_assert_uint_eq(b.len, 6 + (size_t)n);
        ck_assert(memcmp(b.data + 6, ref, (size_t)n) == 0);
    }
    kmq_strbuf_clear(&b);
}
END_TEST

/* An append larger than the buffer can ever hold fails at once: no
 * allocation, the source is not read, the content stays. */
START_TEST(size_beyond_limit_fails_without_allocating)
{
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        kmq_strbuf b = {0};
        kmq_strbuf_str(&b, "abc");
        char *data = b.data;
        kmq_alloc_fail_after(-1);
        kmq_strbuf_put(&b, "x", sizes[i]); /* would overread if it copied */
        ck_assert_int_eq(kmq_alloc_count(), 0);
        ck_assert(b.failed);
        ck_assert_ptr_eq(b.data, data);
        ck_assert_uint_eq(b.cap, 4096);
        assert_content(&b, "abc", 3);
        kmq_strbuf_clear(&b);
    }
}
END_TEST

/* The pieces of the sweep's document and where each one ends. */
#define PIECES 400
static size_t build_doc(kmq_strbuf *b, size_t ends[PIECES])
{
    for (int i = 0; i < PIECES; i++) {
        switch (i % 3) {
        case 0:
            kmq_strbuf_fmt(b, "row %d: %s,%zu\n", i, "value", (size_t)i * 7919);
            break;
        case 1:
            kmq_strbuf_str(b, "<path d=\"M 0 0 L 10 10\" stroke=\"#123456\"/>\n");
            break;
        default: {
            char block[97];
            memset(block, 'a' + i % 26, sizeof block);
            kmq_strbuf_put(b, block, sizeof block);
        }
        }
        ends[i] = b->len;
    }
    return b->len;
}

/* Each allocation fails in turn: the buffer is then failed, holds exactly
 * the pieces appended before the failure (no partial piece), keeps its
 * capacity, and takes nothing more even though allocations succeed again;
 * clear makes it usable. Without a failure the text is the reference. */
START_TEST(alloc_failure_sweep)
{
    kmq_strbuf ref = {0};
    size_t ref_ends[PIECES];
    kmq_alloc_fail_after(-1);
    size_t total = build_doc(&ref, ref_ends);
    long allocations = kmq_alloc_count();
    ck_assert(!ref.failed);
    ck_assert_int_ge(allocations, 4); /* about 40 KB: 4, 8, 16, 32, 64 KiB */

    bool succeeded = false;
    for (long n = 0; n < 100 && !succeeded; n++) {
        kmq_strbuf b = {0};
        size_t ends[PIECES];
        kmq_alloc_fail_after(n);
        build_doc(&b, ends);
        kmq_alloc_fail_after(-1);
        if (!b.failed) {
            ck_assert_int_eq(n, allocations);
            assert_content(&b, ref.data, total);
            succeeded = true;
        } else {
            ck_assert_int_lt(n, allocations);
            /* a prefix of whole pieces, and the same prefix after every
             * later append */
            ck_assert(b.len == 0 || memcmp(b.data, ref.data, b.len) == 0);
            bool whole = b.len == 0;
            for (int i = 0; i < PIECES && !whole; i++)
                whole = ref_ends[i] == b.len;
            ck_assert_msg(whole, "failure %ld left %zu bytes, not a whole piece", n, b.len);
            ck_assert_uint_eq(ends[PIECES - 1], b.len);
            ck_assert_uint_eq(b.cap, n == 0 ? 0 : (size_t)4096 << (n - 1));
            size_t len = b.len;
            kmq_strbuf_put(&b, ref.data, total);
            kmq_strbuf_fmt(&b, "%d", 1);
            ck_assert_int_eq(kmq_alloc_count(), 0);
            ck_assert(b.failed);
            ck_assert_uint_eq(b.len, len);
        }
        kmq_strbuf_clear(&b);
        ck_assert(!b.failed && b.len == 0 && b.cap == 0 && b.data == NULL);
        kmq_strbuf_str(&b, "again");
        ck_assert(!b.failed);
        assert_content(&b, "again", 5);
        kmq_strbuf_clear(&b);
    }
    ck_assert(succeeded);
    kmq_strbuf_clear(&ref);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"zeroed_is_empty", zeroed_is_empty},
        {"growth_doubles_from_4k", growth_doubles_from_4k},
        {"appends_keep_every_byte", appends_keep_every_byte},
        {"formatting_matches_snprintf", formatting_matches_snprintf},
        {"format_error_fails", format_error_fails},
        {"size_beyond_limit_fails_without_allocating", size_beyond_limit_fails_without_allocating},
        {"alloc_failure_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("strbuf");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
