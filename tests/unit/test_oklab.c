/* test_oklab.c — the sRGB <-> OKLab conversion: the published reference
 * values (white, the sRGB primaries), every 8-bit colour surviving the round
 * trip, and the grid staying inside 8 bits with a and b centred. The
 * conversion is also checked against a numpy implementation of the same
 * formulas in tests/cli/test_oklab.py. */
#include "kmq/oklab.h"
#include "testutil.h"

#include <check.h>
#include <math.h>

static void expect_lab(uint32_t key, double l, double a, double b)
{
    double lab[3];
    kmq_oklab_from_rgb_key(key, lab);
    ck_assert_double_eq_tol(lab[0], l, 1e-6);
    ck_assert_double_eq_tol(lab[1], a, 1e-6);
    ck_assert_double_eq_tol(lab[2], b, 1e-6);
}

START_TEST(reference_values)
{
    /* Values given with the published conversion (Ottosson 2020). */
    expect_lab(0xffffff, 1.0, 0.0, 0.0);
    expect_lab(0x000000, 0.0, 0.0, 0.0);
    expect_lab(0xff0000, 0.627955, 0.224863, 0.125846);
    expect_lab(0x00ff00, 0.866440, -0.233888, 0.179498);
    expect_lab(0x0000ff, 0.452014, -0.032457, -0.311528);
    /* Greys have no chroma. */
    for (uint32_t v = 0; v < 256; v += 17) {
        double lab[3];
        kmq_oklab_from_rgb_key(v << 16 | v << 8 | v, lab);
        ck_assert_double_eq_tol(lab[1], 0.0, 1e-6);
        ck_assert_double_eq_tol(lab[2], 0.0, 1e-6);
    }
}
END_TEST

START_TEST(round_trip_every_colour)
{
    for (uint32_t key = 0; key < (1u << 24); key++) {
        double lab[3];
        uint8_t rgb[3];
        kmq_oklab_from_rgb_key(key, lab);
        kmq_oklab_to_srgb8(lab, rgb);
        uint32_t back = (uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | rgb[2];
        if (back != key)
            ck_abort_msg("0x%06x comes back as 0x%06x", key, back);
    }
}
END_TEST

START_TEST(grid_inside_eight_bits)
{
    /* The extremes of the sRGB gamut stay clear of the grid's edges, so
     * nothing is clamped; the grid inverts to within half a step. */
    static const uint32_t corners[] = {0x000000, 0xffffff, 0xff0000, 0x00ff00,
                                       0x0000ff, 0xffff00, 0xff00ff, 0x00ffff};
    for (size_t i = 0; i < sizeof corners / sizeof corners[0]; i++) {
        double lab[3], grid[3], back[3];
        kmq_oklab_from_rgb_key(corners[i], lab);
        uint32_t g = kmq_oklab_grid_key(lab);
        grid[0] = g >> 16;
        grid[1] = (g >> 8) & 0xff;
        grid[2] = g & 0xff;
        ck_assert(grid[1] > 0 && grid[1] < 255 && grid[2] > 0 && grid[2] < 255);
        kmq_oklab_from_grid(grid, back);
        for (int c = 0; c < 3; c++)
            ck_assert_double_le(fabs(back[c] - lab[c]), 0.5 / 255 + 1e-12);
    }
    double white[3] = {1, 0, 0};
    ck_assert_uint_eq(kmq_oklab_grid_key(white), 0xff8080u);
    /* Out of gamut: clamped per linear channel, never wrapped. */
    double out[3] = {1.2, 0.3, 0.3};
    uint8_t rgb[3];
    kmq_oklab_to_srgb8(out, rgb);
    ck_assert_uint_eq(rgb[0], 255);
}
END_TEST

int main(void)
{
    const tu_case cases[] = {
        {"reference", reference_values},
        {"round_trip", round_trip_every_colour},
        {"grid", grid_inside_eight_bits},
    };
    Suite *s = suite_create("oklab");
    tu_add_cases(s, cases, sizeof cases / sizeof cases[0], 300, NULL);
    return tu_run_suite(s);
}
