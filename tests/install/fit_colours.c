/* A program of a user of the installed libkmq, built by test_install.sh with
 * `pkg-config --cflags --libs kmq`: fits k-means on an array of colours and
 * checks the result against what the data makes certain (three separated
 * groups: the centres are their weighted means, the labels their groups,
 * the inertia the sum of squared distances), then a bad call's message. */
#include <kmq/kmq.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 9

static int fail(const char *what)
{
    fprintf(stderr, "fit_colours: %s\n", what);
    return 1;
}

int main(void)
{
    /* Three groups of colours, far apart; weights are pixel counts. */
    static const uint8_t rgb[N * 3] = {10, 10,  10, 12, 10, 10, 10,  14, 10, 200, 20, 20, 204, 20,
                                       20, 200, 20, 26, 20, 20, 220, 20, 20, 220, 20, 24, 220};
    static const uint64_t weight[N] = {1, 1, 2, 3, 1, 1, 1, 1, 2};
    kmq_params p;
    kmq_params_init(&p, 3);
    p.seed = 5;
    kmq_result r = {0};
    char msg[256];
    if (kmq_kmeans_rgb(rgb, weight, N, &p, &r, msg, sizeof msg) != 0)
        return fail(msg);
    if (r.k != 3)
        return fail("expected 3 centres");
    double inertia = 0.0;
    for (int i = 0; i < N; i++) {
        int group = i / 3, label = r.labels[i];
        for (int j = 0; j < N; j++) /* same group <=> same label */
            if ((j / 3 == group) != (r.labels[j] == label))
                return fail("labels do not follow the groups");
        double sum[3] = {0}, w = 0;
        for (int j = group * 3; j < group * 3 + 3; j++) {
            for (int c = 0; c < 3; c++)
                sum[c] += (double)weight[j] * rgb[j * 3 + c];
            w += (double)weight[j];
        }
        for (int c = 0; c < 3; c++) {
            double mean = sum[c] / w, d = rgb[i * 3 + c] - r.centers[label * 3 + c];
            if (fabs(r.centers[label * 3 + c] - mean) > 1e-9)
                return fail("a centre is not its group's weighted mean");
            inertia += (double)weight[i] * d * d;
        }
    }
    if (fabs(r.inertia - inertia) > 1e-9 * inertia)
        return fail("inertia is not the sum of squared distances");
    printf("libkmq %s: k = %d, inertia = %.6f, iterations = %d\n", kmq_version(), r.k, r.inertia,
           r.iterations);
    kmq_result_free(&r);

    kmq_params_init(&p, 0);
    if (kmq_kmeans_rgb(rgb, NULL, N, &p, &r, msg, sizeof msg) != 2 || !strstr(msg, "k = 0"))
        return fail("k = 0 was not refused as a bad argument naming k");
    printf("k = 0 refused: %s\n", msg);
    return 0;
}
