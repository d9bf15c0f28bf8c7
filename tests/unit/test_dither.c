/* test_dither.c — Floyd-Steinberg rows: a flat colour keeps its average
 * over an area, a colour of the palette is never dithered, the serpentine
 * state is one row, strength 0 is the nearest entry, misuse and
 * an allocation-failure sweep. The exact algorithm is checked against a
 * reference in tests/cli/test_dither.py. */
#include "kmq/alloc_hook.h"
#include "kmq/dither.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

enum { W = 64, H = 64 };

static void dither_flat(const uint8_t *pal, size_t n, const uint8_t colour[3], double strength,
                        uint8_t *out /* W * H */)
{
    kmq_err err;
    kmq_err_clear(&err);
    kmq_dither *d = NULL;
    ck_assert_int_eq(kmq_dither_new(pal, n, W, strength, 0, &d, &err), KMQ_OK);
    uint8_t row[3 * W];
    for (size_t x = 0; x < W; x++)
        memcpy(row + 3 * x, colour, 3);
    for (size_t y = 0; y < H; y++)
        kmq_dither_row(d, row, out + y * W);
    kmq_dither_free(d);
}

START_TEST(flat_grey_keeps_its_average)
{
    /* Black and white only: 25 % grey must come out about a quarter white. */
    static const uint8_t pal[6] = {0, 0, 0, 255, 255, 255};
    static const uint8_t grey[3] = {64, 64, 64};
    uint8_t out[W * H];
    dither_flat(pal, 2, grey, 1.0, out);
    size_t white = 0;
    for (size_t i = 0; i < W * H; i++)
        white += out[i];
    double share = (double)white / (W * H);
    ck_assert_msg(share > 0.24 && share < 0.26, "white share %.4f, want about 64/255", share);
}
END_TEST

START_TEST(palette_colour_is_not_dithered)
{
    static const uint8_t pal[9] = {10, 20, 30, 200, 100, 50, 90, 90, 90};
    uint8_t out[W * H];
    dither_flat(pal, 3, pal + 3, 1.0, out);
    for (size_t i = 0; i < W * H; i++)
        ck_assert_uint_eq(out[i], 1);
}
END_TEST

START_TEST(strength_zero_is_nearest)
{
    /* Entries 0 and 2 are equally near: the lowest index wins. */
    static const uint8_t pal[9] = {100, 0, 0, 0, 200, 0, 120, 0, 0};
    static const uint8_t c[3] = {110, 0, 0};
    uint8_t out[W * H];
    dither_flat(pal, 3, c, 0.0, out);
    for (size_t i = 0; i < W * H; i++)
        ck_assert_uint_eq(out[i], 0);
}
END_TEST

START_TEST(one_row_of_error_is_all_the_state)
{
    /* Two diffusers fed the same rows agree row by row: nothing but the
     * rows and the palette decides. */
    static const uint8_t pal[12] = {0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255};
    uint8_t rows[3][3 * W];
    for (size_t y = 0; y < 3; y++)
        for (size_t x = 0; x < 3 * W; x++)
            rows[y][x] = (uint8_t)((x * 37 + y * 101) % 256);
    kmq_err err;
    kmq_err_clear(&err);
    kmq_dither *a = NULL, *b = NULL;
    ck_assert_int_eq(kmq_dither_new(pal, 4, W, 0.75, 0, &a, &err), KMQ_OK);
    ck_assert_int_eq(kmq_dither_new(pal, 4, W, 0.75, 0, &b, &err), KMQ_OK);
    for (size_t y = 0; y < 3; y++) {
        uint8_t oa[W], ob[W];
        kmq_dither_row(a, rows[y], oa);
        kmq_dither_row(b, rows[y], ob);
        ck_assert_mem_eq(oa, ob, W);
    }
    kmq_dither_free(a);
    kmq_dither_free(b);
}
END_TEST

START_TEST(misuse)
{
    static const uint8_t pal[3] = {1, 2, 3};
    kmq_err err;
    kmq_err_clear(&err);
    kmq_dither *d = (kmq_dither *)1;
    ck_assert_int_eq(kmq_dither_new(pal, 0, 4, 1.0, 0, &d, &err), KMQ_E_ARG);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(kmq_dither_new(pal, 257, 4, 1.0, 0, &d, &err), KMQ_E_ARG);
    ck_assert_int_eq(kmq_dither_new(pal, 1, 0, 1.0, 0, &d, &err), KMQ_E_ARG);
    ck_assert_int_eq(kmq_dither_new(pal, 1, 4, 1.5, 0, &d, &err), KMQ_E_ARG);
    ck_assert_int_eq(kmq_dither_new(NULL, 1, 4, 1.0, 0, &d, &err), KMQ_E_ARG);
    kmq_dither_free(NULL);
    /* One pixel wide: every error goes off the image or straight down. */
    ck_assert_int_eq(kmq_dither_new(pal, 1, 1, 1.0, 0, &d, &err), KMQ_OK);
    uint8_t px[3] = {200, 200, 200}, out = 9;
    kmq_dither_row(d, px, &out);
    kmq_dither_row(d, px, &out);
    ck_assert_uint_eq(out, 0);
    kmq_dither_free(d);
}
END_TEST

START_TEST(alloc_failure_sweep)
{
    static const uint8_t pal[6] = {0, 0, 0, 255, 255, 255};
    kmq_err err;
    int failures = 0;
    for (long nth = 0; nth < 8; nth++) {
        kmq_err_clear(&err);
        kmq_dither *d = NULL;
        kmq_alloc_fail_after(nth);
        kmq_status st = kmq_dither_new(pal, 2, 100, 1.0, 0, &d, &err);
        kmq_alloc_fail_after(-1);
        if (st == KMQ_OK) {
            kmq_dither_free(d);
            break;
        }
        ck_assert_int_eq(st, KMQ_E_NOMEM);
        ck_assert_ptr_null(d);
        failures++;
    }
    ck_assert_int_eq(failures, 2);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"flat_grey", flat_grey_keeps_its_average},
        {"palette_colour", palette_colour_is_not_dithered},
        {"strength_zero", strength_zero_is_nearest},
        {"rows", one_row_of_error_is_all_the_state},
        {"misuse", misuse},
        {"alloc_sweep", alloc_failure_sweep},
    };
    Suite *s = suite_create("dither");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 120, NULL);
    return tu_run_suite(s);
}
