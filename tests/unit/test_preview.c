/* test_preview.c — the streamed preview: block means against a mean
 * computed here pixel by pixel, sizes for odd dimensions, rows fed in any
 * strip size, and the sampled grid of large blocks. */
#include "kmq/preview.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static uint8_t value_at(uint32_t x, uint32_t y, int c)
{
    return (uint8_t)((x * 7 + y * 13 + (uint32_t)c * 101) % 251);
}

static uint8_t *image(uint32_t w, uint32_t h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                rgb[((size_t)y * w + x) * 3 + (size_t)c] = value_at(x, y, c);
    return rgb;
}

static kmq_preview *build(const uint8_t *rgb, uint32_t w, uint32_t h, uint32_t side, uint32_t strip)
{
    kmq_preview *p = NULL;
    kmq_err err = {0};
    ck_assert_int_eq(kmq_preview_new(w, h, side, &p, &err), KMQ_OK);
    for (uint32_t y = 0; y < h; y += strip)
        kmq_preview_add_rows(p, rgb + (size_t)y * w * 3, h - y < strip ? h - y : strip);
    return p;
}

START_TEST(block_means)
{
    /* 37 x 23 into at most 10: factor 4, preview 10 x 6, the last column
     * and row of blocks partial (1 and 3 pixels). */
    uint32_t w = 37, h = 23;
    uint8_t *rgb = image(w, h);
    uint32_t strips[] = {1, 5, 23, 64};
    for (size_t s = 0; s < 4; s++) {
        kmq_preview *p = build(rgb, w, h, 10, strips[s]);
        uint32_t pw, ph;
        const uint8_t *px = kmq_preview_pixels(p, &pw, &ph);
        ck_assert_uint_eq(pw, 10);
        ck_assert_uint_eq(ph, 6);
        for (uint32_t by = 0; by < ph; by++)
            for (uint32_t bx = 0; bx < pw; bx++)
                for (int c = 0; c < 3; c++) {
                    unsigned sum = 0, n = 0;
                    for (uint32_t y = by * 4; y < by * 4 + 4 && y < h; y++)
                        for (uint32_t x = bx * 4; x < bx * 4 + 4 && x < w; x++, n++)
                            sum += value_at(x, y, c);
                    ck_assert_uint_eq(px[((size_t)by * pw + bx) * 3 + (size_t)c],
                                      (sum + n / 2) / n);
                }
        kmq_preview_free(p);
    }
    free(rgb);
}
END_TEST

START_TEST(large_blocks_sample_a_grid)
{
    /* Factor 20: step 5, samples at offsets 0, 5, 10, 15 of each block. */
    uint32_t w = 200, h = 60;
    uint8_t *rgb = image(w, h);
    kmq_preview *p = build(rgb, w, h, 10, 7);
    uint32_t pw, ph;
    const uint8_t *px = kmq_preview_pixels(p, &pw, &ph);
    ck_assert_uint_eq(pw, 10);
    ck_assert_uint_eq(ph, 3);
    for (uint32_t by = 0; by < ph; by++)
        for (uint32_t bx = 0; bx < pw; bx++) {
            unsigned sum = 0;
            for (uint32_t j = 0; j < 4; j++)
                for (uint32_t i = 0; i < 4; i++)
                    sum += value_at(bx * 20 + i * 5, by * 20 + j * 5, 1);
            ck_assert_uint_eq(px[((size_t)by * pw + bx) * 3 + 1], (sum + 8) / 16);
        }
    kmq_preview_free(p);
    free(rgb);
}
END_TEST

START_TEST(small_image_is_copied)
{
    uint32_t w = 9, h = 4;
    uint8_t *rgb = image(w, h);
    kmq_preview *p = build(rgb, w, h, 512, 3);
    uint32_t pw, ph;
    const uint8_t *px = kmq_preview_pixels(p, &pw, &ph);
    ck_assert_uint_eq(pw, w);
    ck_assert_uint_eq(ph, h);
    ck_assert_int_eq(memcmp(px, rgb, (size_t)w * h * 3), 0);
    kmq_preview_free(p);
    free(rgb);
    kmq_err err = {0};
    ck_assert_int_eq(kmq_preview_new(0, 5, 10, &p, &err), KMQ_E_ARG);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"block_means", block_means},
        {"large_blocks_sample_a_grid", large_blocks_sample_a_grid},
        {"small_image_is_copied", small_image_is_copied},
    };
    Suite *s = suite_create("preview");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 0, NULL);
    return tu_run_suite(s);
}
