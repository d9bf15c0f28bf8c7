/* image_vips.c — not yet written. */
typedef int kmq__stub_image_vips;
