/* summary_fields.c — typed, range-checked access to the fields of a JSON
 * document, for the readers of summary_read.c (layer L2, part of the
 * summary module: one of its files that may include <jansson.h>). Each
 * function checks presence, type and range, and refuses the document with
 * KMQ_E_DECODE and a message that names the field and its value
 * ("results[0].k = 9007199254740993 is outside 1..256").
 *
 * Threading: no parallel regions, no shared state.
 */
#include "summary_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

kmq_status kmq__sj_refuse(kmq__sj_reader *rd, const char *fmt, ...)
{
    char problem[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return kmq_err_set(rd->err, KMQ_E_DECODE, "not a kmq schema-1 %s: %s", rd->doc, problem);
}

kmq__sj_field_name kmq__sj_name_of(const char *ctx, const char *key)
{
    kmq__sj_field_name n;
    snprintf(n.s, sizeof n.s, "%s%s%s", ctx, *ctx ? "." : "", key);
    return n;
}

kmq_status kmq__sj_bad_field(kmq__sj_reader *rd, const char *name, const char *problem)
{
    return kmq__sj_refuse(rd, "field \"%s\" %s", name, problem);
}

kmq_status kmq__sj_rd_any(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                          json_t **out)
{
    *out = json_object_get(obj, key);
    return *out ? KMQ_OK : kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s, "is missing");
}

kmq_status kmq__sj_rd_typed(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                            json_type type, json_t **out)
{
    kmq_status st = kmq__sj_rd_any(rd, obj, ctx, key, out);
    if (st == KMQ_OK && json_typeof(*out) != type)
        st = kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s,
                               type == JSON_OBJECT ? "is not an object" : "is not an array");
    return st;
}

kmq_status kmq__sj_check_int(kmq__sj_reader *rd, const json_t *v, const char *name, json_int_t lo,
                             json_int_t hi, bool nullable, json_int_t *out)
{
    if (nullable && json_is_null(v)) {
        *out = 0;
        return KMQ_OK;
    }
    if (!json_is_integer(v))
        return kmq__sj_bad_field(rd, name,
                                 nullable ? "is not an integer or null" : "is not an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        if (hi == INT64_MAX)
            return kmq__sj_refuse(rd, "%s = %lld is below %lld", name, (long long)x, (long long)lo);
        return kmq__sj_refuse(rd, "%s = %lld is outside %lld..%lld", name, (long long)x,
                              (long long)lo, (long long)hi);
    }
    *out = x;
    return KMQ_OK;
}

kmq_status kmq__sj_check_real(kmq__sj_reader *rd, const json_t *v, const char *name, bool nullable,
                              double lo, double *out)
{
    if (nullable && json_is_null(v)) {
        *out = NAN;
        return KMQ_OK;
    }
    if (!json_is_number(v))
        return kmq__sj_bad_field(rd, name,
                                 nullable ? "is not a number or null" : "is not a number");
    double x = json_number_value(v);
    if (!isfinite(x))
        return kmq__sj_bad_field(rd, name, "is not a finite number");
    if (x < lo) /* -0.0 passes a bound of 0: kmq writes it (a zero duration) */
        return kmq__sj_refuse(rd, "%s = %.17g is below %g", name, x, lo);
    *out = x;
    return KMQ_OK;
}

static kmq_status rd_int(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                         json_int_t lo, json_int_t hi, bool nullable, json_int_t *out)
{
    json_t *v;
    kmq_status st = kmq__sj_rd_any(rd, obj, ctx, key, &v);
    return st != KMQ_OK
               ? st
               : kmq__sj_check_int(rd, v, kmq__sj_name_of(ctx, key).s, lo, hi, nullable, out);
}

kmq_status kmq__sj_rd_u64(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                          bool nullable, uint64_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, 0, INT64_MAX, nullable, &v);
    if (st == KMQ_OK)
        *out = (uint64_t)v;
    return st;
}

kmq_status kmq__sj_rd_k(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                        json_int_t lo, json_int_t hi, size_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, lo, hi, false, &v);
    if (st == KMQ_OK)
        *out = (size_t)v;
    return st;
}

kmq_status kmq__sj_rd_i32(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                          int lo, int hi, bool nullable, int *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, lo, hi, nullable, &v);
    if (st == KMQ_OK)
        *out = (int)v;
    return st;
}

kmq_status kmq__sj_rd_u32(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                          bool nullable, uint32_t *out)
{
    json_int_t v = 0;
    kmq_status st = rd_int(rd, obj, ctx, key, 0, UINT32_MAX, nullable, &v);
    if (st == KMQ_OK)
        *out = (uint32_t)v;
    return st;
}

kmq_status kmq__sj_rd_real(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                           bool nullable, double lo, double *out)
{
    json_t *v;
    kmq_status st = kmq__sj_rd_any(rd, obj, ctx, key, &v);
    return st != KMQ_OK ? st
                        : kmq__sj_check_real(rd, v, kmq__sj_name_of(ctx, key).s, nullable, lo, out);
}

kmq_status kmq__sj_rd_bool(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                           bool *out)
{
    json_t *v;
    kmq_status st = kmq__sj_rd_any(rd, obj, ctx, key, &v);
    if (st != KMQ_OK)
        return st;
    if (!json_is_boolean(v))
        return kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s, "is not true or false");
    *out = json_is_true(v);
    return KMQ_OK;
}

kmq_status kmq__sj_rd_str(kmq__sj_reader *rd, const json_t *obj, const char *ctx, const char *key,
                          bool nullable, char **out)
{
    json_t *v;
    kmq_status st = kmq__sj_rd_any(rd, obj, ctx, key, &v);
    if (st != KMQ_OK)
        return st;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return KMQ_OK;
    }
    if (!json_is_string(v))
        return kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s,
                                 nullable ? "is not a string or null" : "is not a string");
    *out = kmq__strdup(json_string_value(v));
    return *out ? KMQ_OK : kmq_err_set(rd->err, KMQ_E_NOMEM, "out of memory reading a %s", rd->doc);
}

kmq_status kmq__sj_rd_array_n(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                              const char *key, size_t n, const char *count_name, json_t **out)
{
    kmq_status st = kmq__sj_rd_typed(rd, obj, ctx, key, JSON_ARRAY, out);
    if (st == KMQ_OK && json_array_size(*out) != n) {
        char what[128];
        snprintf(what, sizeof what, "has %zu entries but %s is %zu", json_array_size(*out),
                 count_name, n);
        st = kmq__sj_bad_field(rd, kmq__sj_name_of(ctx, key).s, what);
    }
    return st;
}

kmq_status kmq__sj_rd_array_max(kmq__sj_reader *rd, const json_t *obj, const char *ctx,
                                const char *key, size_t max, const char *why, json_t **out)
{
    kmq_status st = kmq__sj_rd_typed(rd, obj, ctx, key, JSON_ARRAY, out);
    if (st == KMQ_OK && json_array_size(*out) > max)
        st = kmq__sj_refuse(rd, "%s has %zu entries, more than %zu (%s)",
                            kmq__sj_name_of(ctx, key).s, json_array_size(*out), max, why);
    return st;
}
