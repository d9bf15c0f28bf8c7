/* oklab.c — sRGB <-> OKLab, and the grid the engine fits OKLab on (layer
 * L1; oklab.h says why the grid). Constants: Björn Ottosson, "A perceptual
 * color space for image processing" (2020), the sRGB matrices as published.
 */
#include "kmq/oklab.h"

#include <math.h>
#include <pthread.h>

#define GRID_SCALE  255.0
#define GRID_OFFSET 128.0

static double decode(uint32_t c)
{
    double v = c / 255.0;
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static double encode(double v)
{
    if (!(v > 0.0))
        return 0.0;
    if (v >= 1.0)
        return 1.0;
    return v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1.0 / 2.4) - 0.055;
}

/* decode() of each 8-bit value, filled once: a report converts every
 * distinct colour of an image, and pow() was most of that. The same
 * function fills it, so the values are the same bits. */
static double decoded[256];
static pthread_once_t decoded_once = PTHREAD_ONCE_INIT;

static void fill_decoded(void)
{
    for (uint32_t c = 0; c < 256; c++)
        decoded[c] = decode(c);
}

void kmq_oklab_from_rgb_key(uint32_t key, double lab[3])
{
    pthread_once(&decoded_once, fill_decoded);
    double r = decoded[(key >> 16) & 0xff], g = decoded[(key >> 8) & 0xff], b = decoded[key & 0xff];
    double l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    double m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    double s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    lab[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
    lab[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
    lab[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

void kmq_oklab_to_srgb8(const double lab[3], uint8_t rgb[3])
{
    double l = lab[0] + 0.3963377774 * lab[1] + 0.2158037573 * lab[2];
    double m = lab[0] - 0.1055613458 * lab[1] - 0.0638541728 * lab[2];
    double s = lab[0] - 0.0894841775 * lab[1] - 1.2914855480 * lab[2];
    l = l * l * l;
    m = m * m * m;
    s = s * s * s;
    double lin[3] = {4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
                     -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
                     -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s};
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lround(255.0 * encode(lin[c]));
}

static uint32_t grid_channel(double v, double offset)
{
    double g = round(v * GRID_SCALE + offset);
    return g < 0 ? 0 : g > 255 ? 255 : (uint32_t)g;
}

uint32_t kmq_oklab_grid_key(const double lab[3])
{
    return grid_channel(lab[0], 0) << 16 | grid_channel(lab[1], GRID_OFFSET) << 8 |
           grid_channel(lab[2], GRID_OFFSET);
}

void kmq_oklab_from_grid(const double grid[3], double lab[3])
{
    lab[0] = grid[0] / GRID_SCALE;
    lab[1] = (grid[1] - GRID_OFFSET) / GRID_SCALE;
    lab[2] = (grid[2] - GRID_OFFSET) / GRID_SCALE;
}
